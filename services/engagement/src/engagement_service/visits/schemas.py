from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from engagement_service.followups.methods import Method


class VisitStopReason(StrEnum):
    """Why the customer may stop buying, as the visit learned it: a code, never words
    (care/stop_reasons.py maps it; ``price`` and ``other`` say nothing of a stop)."""

    PRODUCT_EFFECT = "product_effect"
    QUALITY = "quality"
    SERVICE = "service"
    COMPETITOR = "competitor"  # taken by another store or brand
    PRICE = "price"
    OTHER = "other"


class NextStep(BaseModel):
    """What comes next; with a day, it is scheduled as a task for the file's owner."""

    note: str = Field(min_length=1, max_length=500)
    due_on: date | None = Field(
        default=None, description="The day (store-local), not before the visit's"
    )
    method: Method | None = Field(default=None, description="The visit's own method if absent")


class VisitCreate(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64)
    staff_id: str | None = Field(
        default=None,
        max_length=64,
        description="Who visited; the caller's own staff member if absent",
    )
    method: Method
    occurred_at: AwareDatetime = Field(description="When it happened; not in the future")
    outcome: str = Field(min_length=1, max_length=500)
    notes: str = Field(default="", max_length=4000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    task_id: str | None = Field(
        default=None, max_length=64, description="The customer's open task the visit does"
    )
    collected: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields for the customer file under the API's names, as a PATCH body",
    )
    next_step: NextStep | None = None
    stop_reason: VisitStopReason | None = Field(
        default=None,
        description="Why the customer may stop buying, when the visit learned it: the newest "
        "reason a stopped customer's recovery task follows",
    )


class VisitPublic(BaseModel):
    id: str
    customer_id: str
    staff_id: str | None
    method: Method
    occurred_at: AwareDatetime
    outcome: str
    notes: str
    satisfaction: int | None
    task_id: str | None
    collected: dict[str, Any]
    next_step: str | None
    next_task_id: str | None
    stop_reason: VisitStopReason | None
