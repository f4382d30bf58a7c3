from crm_libs.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "customer"
    port: int = 8001
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/crm_customer"
    # A purchase dated further ahead than this is a typing error, not a sale.
    purchase_clock_skew_seconds: int = 300
