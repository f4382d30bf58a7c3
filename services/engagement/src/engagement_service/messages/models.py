"""Care-message templates, the message queue and the opt-outs received by reply."""

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Integer, PrimaryKeyConstraint, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id

# Statuses a message waits in for the worker; the index of due messages holds only these.
WAITING = ("queued", "held_quiet_hours")


class MessageTemplate(SQLModel, table=True):
    """A care-message template: a store's own, or the brand's (no store) that every store uses."""

    __tablename__ = "message_template"
    __table_args__ = (Index("ix_message_template_store", "store_id", "id"),)

    id: str = Field(default_factory=new_id, sa_column=Column(Text, primary_key=True))
    store_id: str | None = Field(default=None, sa_column=Column(Text))
    category: str = Field(sa_column=Column(Text, nullable=False))
    name: str = Field(sa_column=Column(Text, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class SmsMessage(SQLModel, table=True):
    """One message to one customer: rendered when queued, sent by the worker (messages/worker.py).

    ``status``: ``queued`` (due at ``not_before``), ``held_quiet_hours`` (due at the store's
    08:00), ``sent`` (the provider took it: ``provider_message_id``), ``delivered``, ``failed``
    (for good: ``reason``), ``opted_out`` (the customer opted out before it went).
    The number is not kept: the worker reads it from the customer service when it sends, and
    keeps only its keyed hash (``phone_hash``) to match replies to the customer.
    """

    __tablename__ = "sms_message"
    __table_args__ = (
        # The worker's claim: due messages by time.
        Index(
            "ix_sms_message_due",
            "not_before",
            postgresql_where=text("status IN ('queued', 'held_quiet_hours')"),
        ),
        # GET /messages by customer and the frequency cap's count.
        Index("ix_sms_message_customer", "store_id", "customer_id", "id"),
        Index(
            "ix_sms_message_campaign",
            "campaign_id",
            "id",
            postgresql_where=text("campaign_id IS NOT NULL"),
        ),
        Index(
            "ix_sms_message_provider_id",
            "provider_message_id",
            unique=True,
            postgresql_where=text("provider_message_id IS NOT NULL"),
        ),
        Index(
            "ix_sms_message_phone",
            "signature",
            "phone_hash",
            postgresql_where=text("phone_hash IS NOT NULL"),
        ),
        # Staff statistics: messages sent by each staff member of a store.
        Index(
            "ix_sms_message_staff_sent",
            "store_id",
            "staff_id",
            "sent_at",
            postgresql_where=text("sent_at IS NOT NULL"),
        ),
    )

    id: str = Field(default_factory=new_id, sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    template_id: str | None = Field(default=None, sa_column=Column(Text))
    campaign_id: str | None = Field(default=None, sa_column=Column(Text))
    category: str = Field(sa_column=Column(Text, nullable=False))
    carrier_class: str = Field(sa_column=Column(Text, nullable=False))
    # The staff member whose voice it is (miss_you: the customer's owner).
    staff_id: str | None = Field(default=None, sa_column=Column(Text))
    signature: str = Field(sa_column=Column(Text, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    status: str = Field(sa_column=Column(Text, nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    not_before: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # A worker's claim: no other takes the message before ``lease_until``.
    leased_by: str | None = Field(default=None, sa_column=Column(Text))
    lease_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    provider: str | None = Field(default=None, sa_column=Column(Text))
    provider_message_id: str | None = Field(default=None, sa_column=Column(Text))
    phone_hash: str | None = Field(default=None, sa_column=Column(Text))
    created_by: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    failed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class SmsOptOut(SQLModel, table=True):
    """A customer who replied with an opt-out keyword: no message but transactional ones under
    that signature, until a re-subscribe keyword (or a consent given later in the file)."""

    __tablename__ = "sms_opt_out"
    __table_args__ = (PrimaryKeyConstraint("signature", "customer_id"),)

    signature: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    keyword: str = Field(sa_column=Column(Text, nullable=False))
    opted_out_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
