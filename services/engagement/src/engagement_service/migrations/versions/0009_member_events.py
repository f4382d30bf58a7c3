"""member events: the store's events, invitations and replies, check-ins, and the guests
brought (pending ones queued for the guest-file job)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-23 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_event",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place", sa.Text(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_store_event_store", "store_event", ["store_id", "id"])
    op.create_table(
        "event_invitation",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("walk_in", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("invited_by", sa.Text(), nullable=False),
        sa.Column(
            "invited_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id", "customer_id"),
    )
    op.create_table(
        "event_checkin",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("walk_in", sa.Boolean(), nullable=False),
        sa.Column("guests", sa.SmallInteger(), nullable=False),
        sa.Column("checked_in_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "customer_id"),
    )
    op.create_table(
        "event_guest",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("inviter_customer_id", sa.Text(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("guest_customer_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("recorded_by", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("brought_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_guest_event", "event_guest", ["event_id", "inviter_customer_id"])
    op.create_index(
        "ix_event_guest_pending",
        "event_guest",
        ["next_attempt_at"],
        postgresql_where=sa.text("file = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_event_guest_pending", table_name="event_guest")
    op.drop_index("ix_event_guest_event", table_name="event_guest")
    op.drop_table("event_guest")
    op.drop_table("event_checkin")
    op.drop_table("event_invitation")
    op.drop_index("ix_store_event_store", table_name="store_event")
    op.drop_table("store_event")
