from datetime import date
from enum import StrEnum

from pydantic import BaseModel


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CLOSED = "closed"  # not done, with a reason


class ClosedReason(StrEnum):
    """What happened to the task's customer file."""

    ARCHIVED = "archived"
    ERASED = "erased"
    MERGED = "merged"


class TaskPublic(BaseModel):
    id: str
    customer_id: str
    kind: str
    phase: int | None
    sku: str | None
    due_on: date
    method: str
    purpose: str
    status: TaskStatus
    closed_reason: ClosedReason | None
    assignee_staff_id: str | None
