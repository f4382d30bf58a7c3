"""Member events (DOMAIN.md §6) as engagement keeps them: the event, who was invited and what
they answered, who checked in, and the guests they brought.

No name or phone of a customer is kept here (engagement's copy of the files carries none by
contract): a guest's name and phone are held only until the guest's file exists in the customer
service, then cleared, leaving the file's id.
"""

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id

SCHEDULED = "scheduled"
CANCELLED = "cancelled"

# A guest's file: an existing customer's (linked), one opened for the guest as a prospect
# (created), or not yet known because the customer service did not answer (pending: the
# guest-file job opens it later), or refused.
LINKED = "linked"
CREATED = "created"
PENDING = "pending"
# The customer service refused the guest's values for good (the reason in ``last_error``).
REFUSED = "refused"


class StoreEvent(SQLModel, table=True):
    """A store's member event. Not ``member_event``: scoring's table has that name in the one
    metadata the services share when imported together."""

    __tablename__ = "store_event"
    __table_args__ = (Index("ix_store_event_store", "store_id", "id"),)

    id: str = Field(default_factory=new_id, sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(sa_column=Column(Text, nullable=False))
    title: str = Field(sa_column=Column(Text, nullable=False))
    starts_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    place: str = Field(sa_column=Column(Text, nullable=False))
    capacity: int = Field(sa_column=Column(Integer, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    cancelled_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_by: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class EventInvitation(SQLModel, table=True):
    """A customer invited to an event (or let in as a walk-in), and their reply."""

    __tablename__ = "event_invitation"
    __table_args__ = (PrimaryKeyConstraint("event_id", "customer_id"),)

    event_id: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    reply: str | None = Field(default=None, sa_column=Column(Text))
    replied_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # Checked in without an invitation: the invitation is the record of the walk-in.
    walk_in: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    invited_by: str = Field(sa_column=Column(Text, nullable=False))
    invited_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class EventCheckIn(SQLModel, table=True):
    """A customer at the event: once per event and customer."""

    __tablename__ = "event_checkin"
    __table_args__ = (PrimaryKeyConstraint("event_id", "customer_id"),)

    event_id: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    checked_in_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    walk_in: bool = Field(sa_column=Column(Boolean, nullable=False))
    guests: int = Field(sa_column=Column(SmallInteger, nullable=False))
    checked_in_by: str = Field(sa_column=Column(Text, nullable=False))


class EventGuest(SQLModel, table=True):
    """A friend a checked-in customer brought, and the guest's file."""

    __tablename__ = "event_guest"
    __table_args__ = (
        Index("ix_event_guest_event", "event_id", "inviter_customer_id"),
        # The guest-file job's queue: pending guests by when they are due again.
        Index(
            "ix_event_guest_pending", "next_attempt_at", postgresql_where=text("file = 'pending'")
        ),
    )

    id: str = Field(default_factory=new_id, sa_column=Column(Text, primary_key=True))
    event_id: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    inviter_customer_id: str = Field(sa_column=Column(Text, nullable=False))
    file: str = Field(sa_column=Column(Text, nullable=False))
    guest_customer_id: str | None = Field(default=None, sa_column=Column(Text))
    # Held only while the file is pending (cleared once it exists).
    name: str | None = Field(default=None, sa_column=Column(Text))
    phone: str | None = Field(default=None, sa_column=Column(Text))
    # Who checked the guest in, to open the file as them later (the customer service's rules
    # and scope are the caller's): subject, role, store and staff member of the principal.
    recorded_by: dict[str, str | None] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False)
    )
    attempts: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    brought_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
