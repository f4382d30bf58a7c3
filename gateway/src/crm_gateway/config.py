from crm_libs.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "gateway"
    port: int = 8000
    customer_url: str = "http://127.0.0.1:8001"
    engagement_url: str = "http://127.0.0.1:8002"
    scoring_url: str = "http://127.0.0.1:8003"
    upstream_connect_timeout_seconds: float = 3.0
    upstream_read_timeout_seconds: float = 30.0
    upstream_max_connections: int = 200
