from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

_EMPTY = text("'[]'::jsonb")


class CustomerChange(SQLModel, table=True):
    """A change to a file that came with no HTTP request (a visit's collected fields): who
    brought it, from where, and which fields it changed, skipped or ignored; never the values.

    Why here and not the gateway's audit trail: the gateway writes its trail from the headers of
    the responses it forwards, and an event has no request and no response. A row in this
    service's database, written in the transaction of the change itself, exists exactly when the
    change does (a replayed event changes nothing and writes nothing: the consumer's claims see to
    that). ``GET /customers/{id}/history`` reads it; changes made through the API stay in the
    gateway's ``GET /audit``.
    """

    __tablename__ = "customer_change"
    __table_args__ = (
        Index("ix_customer_change_store_customer_id", "store_id", "customer_id", "id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True)
    )
    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), nullable=False))
    customer_id: str = Field(sa_column=Column(Text, ForeignKey("customer.id"), nullable=False))
    at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    # What brought the change: ``visit`` and the visit's id, the staff member who made it.
    origin: str = Field(sa_column=Column(Text, nullable=False))
    origin_id: str = Field(sa_column=Column(Text, nullable=False))
    staff_id: str | None = Field(default=None, sa_column=Column(Text))
    occurred_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    changed: list[str] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default=_EMPTY)
    )
    # [{field, message}] of values the file's rules refused; fields a visit may not set.
    skipped: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default=_EMPTY)
    )
    ignored: list[str] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default=_EMPTY)
    )
    # The file's version after the change (unchanged when nothing was applied).
    version: int = Field(sa_column=Column(Integer, nullable=False))
