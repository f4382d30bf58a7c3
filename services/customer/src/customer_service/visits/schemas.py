from datetime import datetime

from pydantic import BaseModel, Field


class SkippedField(BaseModel):
    field: str
    message: str


class CustomerChangePublic(BaseModel):
    id: int
    at: datetime
    origin: str = Field(description="What brought the change: `visit`")
    origin_id: str = Field(description="The visit's id")
    staff_id: str | None = Field(description="Who made the visit")
    occurred_at: datetime | None
    changed: list[str] = Field(description="The file's fields it changed")
    skipped: list[SkippedField] = Field(description="Values the file's rules refused")
    ignored: list[str] = Field(description="Fields a visit may not set")
    version: int = Field(description="The file's version after it")
