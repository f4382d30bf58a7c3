"""membership: a store's rules, each member's account and the points ledger

Revision ID: 0013
Revises: 0012
Create Date: 2027-01-05 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "membership_rules",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("points_per_yuan", sa.Numeric(10, 4), nullable=False),
        sa.Column("points_expire_months", sa.Integer(), nullable=False),
        sa.Column("levels", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.PrimaryKeyConstraint("store_id"),
    )
    op.create_table(
        "member_account",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("points_balance", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.Text(), nullable=True),
        sa.Column("previous_level", sa.Text(), nullable=True),
        sa.Column("level_event_id", sa.Text(), nullable=True),
        sa.Column("level_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("points_balance >= 0", name="ck_member_account_balance_not_negative"),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index("ix_member_account_store_id", "member_account", ["store_id", "customer_id"])
    op.create_table(
        "points_entry",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("shortfall", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('earn', 'redeem', 'expire', 'reverse', 'adjust')", name="ck_points_entry_kind"
        ),
        sa.CheckConstraint("balance_after >= 0", name="ck_points_entry_balance_after"),
        sa.CheckConstraint(
            "remaining IS NULL OR (remaining >= 0 AND remaining <= points)",
            name="ck_points_entry_remaining",
        ),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_points_entry_store_customer_id", "points_entry", ["store_id", "customer_id", "id"]
    )
    op.create_index("ix_points_entry_store_reference", "points_entry", ["store_id", "reference"])
    op.create_index(
        "ix_points_entry_open_lots",
        "points_entry",
        ["customer_id", "expires_on"],
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_index(
        "ix_points_entry_store_open_lots",
        "points_entry",
        ["store_id", "expires_on"],
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_table(
        "points_expiry_day",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("expired_on", sa.Date(), nullable=False),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.PrimaryKeyConstraint("store_id"),
    )


def downgrade() -> None:
    op.drop_table("points_expiry_day")
    op.drop_table("points_entry")
    op.drop_table("member_account")
    op.drop_table("membership_rules")
