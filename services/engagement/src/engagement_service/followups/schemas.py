from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from engagement_service.care.special_days import Occasion
from engagement_service.care.stop_reasons import StopReason
from engagement_service.followups.methods import Method


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CLOSED = "closed"  # not done, with a reason
    # Shown, never stored: an open task whose day has passed in the store's time zone.
    OVERDUE = "overdue"


class ClosedReason(StrEnum):
    """What happened to the task's customer file, or to the product its plan follows."""

    ARCHIVED = "archived"
    ERASED = "erased"
    MERGED = "merged"
    REFUNDED = "refunded"
    NO_SUPPLY = "no_supply"  # a refill reminder whose supply run-out is gone or past
    REPLANNED = "replanned"  # a routine task the customer's new cadence no longer asks for


class TaskPublic(BaseModel):
    id: str
    customer_id: str
    kind: str
    phase: int | None
    sku: str | None
    due_on: date
    method: Method
    methods_allowed: list[Method]
    purpose: str
    status: TaskStatus
    closed_reason: ClosedReason | None
    assignee_staff_id: str | None
    done_at: datetime | None = None
    done_by: str | None = None
    # Done on or before its day (store-local); None while not done.
    done_on_time: bool | None = None
    rescheduled_from: date | None = None
    reschedule_reason: str | None = None
    occasion: Occasion | None = None
    occasion_on: date | None = None
    # A recovery task's reason, whether it needs the store's manager, and its step (1 the first;
    # a competitor's review with the manager, then 2 the owner's visit).
    recovery_reason: StopReason | None = None
    with_manager: bool | None = None
    recovery_step: int | None = None


class TaskReschedule(BaseModel):
    due_on: date = Field(description="The new day, in the store's time zone; not in the past")
    reason: str = Field(min_length=1, max_length=500)


class TaskReassign(BaseModel):
    staff_id: str = Field(min_length=1, max_length=64, description="The staff member to take it")
