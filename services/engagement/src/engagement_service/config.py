from crm_libs.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "engagement"
    port: int = 8002
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/crm_engagement"
    consumer_group: str = "engagement"
    # How far ahead of this server's clock a visit's time may be (a phone's clock runs fast).
    visit_clock_skew_seconds: int = 300
