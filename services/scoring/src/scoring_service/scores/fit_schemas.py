"""The model-fit route's body and answer (API.md, ``POST /stores/{id}/models/fit``)."""

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from scoring_service.scores.btyd.summary import TimeUnit
from scoring_service.scores.fits import Scope


class ModelFitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calibration_end: date
    # Given: the purchases after calibration_end up to this day (included) are the holdout.
    holdout_end: date | None = None
    time_unit: TimeUnit = "week"


class BgNbdParameters(BaseModel):
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


class GammaGammaParameters(BaseModel):
    p: float
    q: float
    v: float
    log_likelihood: float


class HoldoutCheck(BaseModel):
    """Repeat purchases (purchase days) of the calibration's customers in the holdout."""

    holdout_end: date
    predicted_repeat: float
    actual_repeat: int


class ModelFitPublic(BaseModel):
    id: str
    store_id: str
    scope: Scope
    calibration_end: date
    time_unit: TimeUnit
    fitted_at: datetime
    customers: int
    repeat_customers: int
    bgnbd: BgNbdParameters
    # Left out when the repeat orders hold no positive value to fit.
    gamma_gamma: GammaGammaParameters | None = None
    holdout: HoldoutCheck | None = None
