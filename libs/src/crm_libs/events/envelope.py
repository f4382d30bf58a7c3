"""The one envelope every event travels in (JSON on the wire, keyed by customer)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from crm_libs.events.topics import Topics as Topics  # still importable from here


def _now() -> datetime:
    return datetime.now(UTC)


class EventEnvelope(BaseModel):
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=_now)
    store_id: str
    customer_id: str
    payload: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> bytes:
        """Partition key: one customer's events stay in order on one partition."""
        return self.customer_id.encode()

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> EventEnvelope:
        return cls.model_validate(orjson.loads(raw))
