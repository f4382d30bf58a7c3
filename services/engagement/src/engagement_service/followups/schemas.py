from datetime import date
from enum import StrEnum

from pydantic import BaseModel


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


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
    assignee_staff_id: str | None
