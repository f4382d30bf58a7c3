"""A campaign, its live counts by message status, and the day each customer was last seen
buying (the miss-you campaign's half of "unseen"; visits are the other half)."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id


class Campaign(SQLModel, table=True):
    """One template to the customers its kind chooses, in one store.

    ``status``: ``draft`` (created, previewable), ``sending`` (the send job renders and queues it
    in chunks: ``processed`` of the files scanned so far, ``cursor`` the last one, both committed
    with each chunk's messages), ``sent`` (every recipient queued or excluded), ``failed``
    (``error`` says why; nothing after the last committed chunk was queued).
    """

    __tablename__ = "campaign"
    __table_args__ = (
        Index("ix_campaign_store", "store_id", "id"),
        # The send job's claim: campaigns being sent.
        Index("ix_campaign_sending", "id", postgresql_where=text("status = 'sending'")),
    )

    id: str = Field(default_factory=new_id, sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(sa_column=Column(Text, nullable=False))
    name: str = Field(sa_column=Column(Text, nullable=False))
    template_id: str = Field(sa_column=Column(Text, nullable=False))
    # The kind's choice of customers: birthday's days, the festival or solar term and its date,
    # miss_you's days unseen, manual's segment (scoring's filters).
    date_from: date | None = Field(default=None, sa_column=Column(Date))
    date_to: date | None = Field(default=None, sa_column=Column(Date))
    occasion: str | None = Field(default=None, sa_column=Column(Text))
    occasion_on: date | None = Field(default=None, sa_column=Column(Date))
    unseen_days: int | None = Field(default=None, sa_column=Column(Integer))
    segment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    # Whose voice (miss_you: each customer's owner instead, when the file has one).
    staff_id: str | None = Field(default=None, sa_column=Column(Text))
    send_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    status: str = Field(
        default="draft", sa_column=Column(Text, nullable=False, server_default="draft")
    )
    # The account that asked for the send: the job reads names and segments as it.
    sent_by: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    leased_by: str | None = Field(default=None, sa_column=Column(Text))
    lease_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    cursor: str | None = Field(default=None, sa_column=Column(Text))
    processed: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    recipients: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    # Recipients not queued, by reason (opted_out_by_reply, frequency_cap, no_phone, ...).
    excluded: dict[str, int] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_by: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class CampaignCount(SQLModel, table=True):
    """How many of a campaign's messages are in each status, kept by triggers on
    ``sms_message`` (migration 0011): a statement's inserted rows counted once per statement,
    a status change moving one from its old status to its new one. Reading a campaign's counts
    is then a few rows, not a count over its 100,000 messages."""

    __tablename__ = "campaign_count"
    __table_args__ = (PrimaryKeyConstraint("campaign_id", "status"),)

    campaign_id: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    n: int = Field(sa_column=Column(BigInteger, nullable=False))


class CustomerSeen(SQLModel, table=True):
    """The store-local day of each customer's last purchase, from ``purchase.recorded``."""

    __tablename__ = "customer_seen"
    __table_args__ = (Index("ix_customer_seen_store", "store_id", "last_purchase_on"),)

    customer_id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    last_purchase_on: date = Field(sa_column=Column(Date, nullable=False))
