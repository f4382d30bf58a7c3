from datetime import date

from pydantic import Field

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
    # How often the daily ageing looks for stores past their local midnight (scores/
    # scheduled.py): a store ages at most this long after it; the look costs a probe per store.
    ageing_check_seconds: float = 60.0
    # How often the month summary's marks are folded for the stores nobody reads (analysis/
    # month_summary_fold.py), and how many stores a run folds at most (the rest go on next run).
    analysis_fold_seconds: float = Field(default=600.0, gt=0)
    analysis_fold_max_stores: int = Field(default=1000, gt=0)
    # Buy-till-you-die fits (scores/fits.py). A store fit needs this many customers with a
    # repeat purchase: refitting CDNOW subsamples, the spread of the fitted model's forecast for
    # the same customers is ±21% (one s.d.) at 50 repeat customers, ±14% at 100, ±9% at 200 and
    # ±7% at 400; 200 is where it falls under 10%. Below it a store uses the pooled fit.
    model_min_repeat_customers: int = 200
    # How often every store is refitted (the fits move slowly: daily is plenty).
    model_refit_seconds: float = 86_400.0
    # The 12-month CLV's discount rate per month (``lifetimes``' default, about 12.7% a year).
    clv_monthly_discount_rate: float = 0.01
    # The manager's report (report/) asks its peers as the caller: the customer service for the
    # sources' conversion and the roster's names, engagement for the staff's completion. A
    # peer slower than this leaves its chart saying so; the page is still served.
    customer_url: str = "http://127.0.0.1:8001"
    engagement_url: str = "http://127.0.0.1:8002"
    peer_timeout_seconds: float = Field(default=2.0, gt=0)
