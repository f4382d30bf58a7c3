"""reassignment: every change of a file's owner, the stores' pools of orphan files, the staff's
monthly completion from engagement, and the inactivity check's day per store

Revision ID: 0014
Revises: 0013
Create Date: 2027-01-06 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ownership_change",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("from_staff_id", sa.Text(), nullable=True),
        sa.Column("to_staff_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("change_of_hands", sa.Boolean(), nullable=False),
        sa.Column(
            "manager_approval", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ownership_change_customer_at", "ownership_change", ["customer_id", "at"])
    op.create_index(
        "ix_ownership_change_received",
        "ownership_change",
        ["store_id", "to_staff_id", "kind", "at"],
    )
    op.create_table(
        "customer_pool",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column(
            "in_pool_since",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("from_staff_id", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index("ix_customer_pool_store_customer", "customer_pool", ["store_id", "customer_id"])
    op.create_table(
        "staff_month_completion",
        sa.Column("staff_id", sa.Text(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("completion_rate", sa.Numeric(5, 4), nullable=False),
        sa.Column("tasks_due", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("staff_id", "month"),
    )
    op.create_table(
        "staff_inactivity_day",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("checked_on", sa.Date(), nullable=False),
        sa.Column(
            "checked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("store_id"),
    )


def downgrade() -> None:
    op.drop_table("staff_inactivity_day")
    op.drop_table("staff_month_completion")
    op.drop_index("ix_customer_pool_store_customer", table_name="customer_pool")
    op.drop_table("customer_pool")
    op.drop_index("ix_ownership_change_received", table_name="ownership_change")
    op.drop_index("ix_ownership_change_customer_at", table_name="ownership_change")
    op.drop_table("ownership_change")
