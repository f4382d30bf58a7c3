"""initial

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:21:31.857469
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

from crm_libs.events.outbox import DROP_NOTIFY_TRIGGER_SQL, NOTIFY_TRIGGER_SQL

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_score",
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("purchase_count", sa.Integer(), nullable=False),
        sa.Column("first_purchase_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_purchase_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("supply_runs_out_on", sa.Date(), nullable=True),
        sa.Column(
            "net_spend_365d", sa.Numeric(precision=14, scale=2), server_default="0", nullable=False
        ),
        sa.Column("value_tier", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index(
        "ix_customer_score_store_spend",
        "customer_score",
        ["store_id", "net_spend_365d"],
        unique=False,
    )
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("envelope", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(
        "ix_outbox_event_unpublished",
        "outbox_event",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    for statement in NOTIFY_TRIGGER_SQL:
        op.execute(statement)
    op.create_table(
        "processed_event",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "purchase_fact",
        sa.Column("purchase_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("purchased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("supply_days", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("purchase_id"),
    )
    op.create_index(
        "ix_purchase_fact_customer_at",
        "purchase_fact",
        ["customer_id", "purchased_at"],
        unique=False,
    )


def downgrade() -> None:
    for statement in DROP_NOTIFY_TRIGGER_SQL:
        op.execute(statement)
    op.drop_index("ix_purchase_fact_customer_at", table_name="purchase_fact")
    op.drop_table("purchase_fact")
    op.drop_table("processed_event")
    op.drop_index(
        "ix_outbox_event_unpublished",
        table_name="outbox_event",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox_event")
    op.drop_index("ix_customer_score_store_spend", table_name="customer_score")
    op.drop_table("customer_score")
