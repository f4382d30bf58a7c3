from datetime import date

from crm_libs.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "scoring"
    port: int = 8003
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/crm_scoring"
    consumer_group: str = "scoring"
    # Events per consumed batch (one transaction): a batch's re-rank ranks its stores' spenders
    # once whatever the batch holds, so a backlog goes faster in large batches.
    consumer_max_records: int = 10_000
    # Replaying a historical purchase log: evaluate trailing windows as of this date, not today.
    as_of: date | None = None
    # How often purchases are let age out of the 365-day window when nobody buys.
    window_refresh_seconds: float = 3600.0
