from datetime import datetime

from pydantic import BaseModel, Field


class ApiKeyCreate(BaseModel):
    store_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)


class ApiKeyPublic(BaseModel):
    id: str
    store_id: str
    name: str
    prefix: str
    created_by: str
    created_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyPublic):
    key: str = Field(description="Shown once: only a hash is kept")
