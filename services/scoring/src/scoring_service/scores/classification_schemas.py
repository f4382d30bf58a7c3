"""The score's history and the manager's ladder floor, as the API shows them."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ScoreChangePublic(BaseModel):
    """One change of the value tier, ladder level or lifecycle, and why."""

    at: datetime
    field: Literal["value_tier", "ladder_level", "lifecycle"]
    previous: str | None
    value: str | None
    cause: str


class LadderFloorIn(BaseModel):
    """A manager's iron-core setting (API.md): the only level a manager sets is ``A``."""

    model_config = ConfigDict(extra="forbid")

    level: Literal["A"]
    reason: str = Field(min_length=1, max_length=500)


class LadderFloorPublic(BaseModel):
    """The floor as set, and the ladder it leaves the customer at."""

    customer_id: str
    ladder_floor: str | None
    ladder_floor_reason: str | None
    ladder_floor_by: str | None
    ladder_level: str | None
    ladder_score: int | None
    version: int
