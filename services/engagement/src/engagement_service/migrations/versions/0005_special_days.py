"""special-day care: a task's occasion, what was planned, each store's last planned day

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-16 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("task", sa.Column("occasion", sa.Text(), nullable=True))
    op.add_column("task", sa.Column("occasion_on", sa.Date(), nullable=True))
    op.create_table(
        "special_day_planned",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("occasion", sa.Text(), nullable=False),
        sa.Column("occasion_year", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("occasion_on", sa.Date(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("customer_id", "occasion", "occasion_year"),
    )
    op.create_table(
        "special_day_run",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("planned_on", sa.Date(), nullable=False),
        sa.Column(
            "planned_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("store_id"),
    )
    # The daily job's walk over the stores, its read of one store's active files and of those
    # changed since its last read.
    op.create_index(
        "ix_customer_file_store_active",
        "customer_file",
        ["store_id", "updated_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_index("ix_customer_file_store_active", table_name="customer_file")
    op.drop_table("special_day_run")
    op.drop_table("special_day_planned")
    op.drop_column("task", "occasion_on")
    op.drop_column("task", "occasion")
