"""``visit.recorded`` on ``crm.engagement.v1`` as this service reads it (deploy/README.md,
"crm.engagement.v1: visits"): only the fields it uses."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

VISIT_RECORDED = "visit.recorded"


class VisitRecorded(BaseModel):
    """The payload: which visit, by whom, when, and the file's fields collected on it (under
    the API's names, as a ``PATCH /customers/{id}`` body would carry them)."""

    visit_id: str = Field(min_length=1, max_length=64)
    staff_id: str | None = Field(default=None, max_length=64)
    occurred_at: datetime | None = None
    collected: dict[str, Any] = Field(default_factory=dict)
