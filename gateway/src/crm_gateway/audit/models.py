from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class AuditEntry(SQLModel, table=True):
    """Who read a sensitive field or changed a customer file, when, and under which request."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_customer_at", "customer_id", "at"),
        Index("ix_audit_entry_actor_at", "actor", "at"),
        Index("ix_audit_entry_at", "at"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True)
    )
    at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    actor: str = Field(sa_column=Column(Text, nullable=False))
    role: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str | None = Field(default=None, sa_column=Column(Text))
    action: str = Field(sa_column=Column(Text, nullable=False))
    resource: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str | None = Field(default=None, sa_column=Column(Text))
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    request_id: str | None = Field(default=None, sa_column=Column(Text))
    status: int | None = Field(default=None, sa_column=Column(Integer))
