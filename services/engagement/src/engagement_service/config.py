from crm_libs.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "engagement"
    port: int = 8002
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/crm_engagement"
    consumer_group: str = "engagement"
