from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class RowErrorPublic(BaseModel):
    row: int
    field: str
    message: str


class ImportJobPublic(BaseModel):
    id: str
    store_id: str
    kind: Literal["customers", "purchases"]
    status: Literal["queued", "running", "done", "failed"]
    filename: str | None
    # Rows under the header, once the worker has counted them.
    total: int | None
    # Rows finished (written, skipped or reported), committed.
    done: int
    # Files or purchases written, and rows skipped as imported before.
    created: int
    skipped: int
    error_count: int
    # The first errors; GET /imports/{id}/errors has them all as CSV.
    errors: list[RowErrorPublic]
    # Why a failed job stopped.
    failure: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
