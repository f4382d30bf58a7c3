"""the day's work list and staff statistics: the customer's value tier in the scores' read copy,
an index of each staff member's open tasks by day, and the months closed per staff member

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-20 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customer_score_seen", sa.Column("value_tier", sa.Text(), nullable=True))
    op.create_index(
        "ix_task_open_store_assignee_due",
        "task",
        ["store_id", "assignee_staff_id", "due_on"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "staff_month_closed",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("staff_id", sa.Text(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column(
            "closed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("store_id", "staff_id", "month"),
    )
    op.create_table(
        "staff_month_run",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("closed_month", sa.Date(), nullable=False),
        sa.Column(
            "closed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("store_id"),
    )


def downgrade() -> None:
    op.drop_table("staff_month_run")
    op.drop_table("staff_month_closed")
    op.drop_index("ix_task_open_store_assignee_due", table_name="task")
    op.drop_column("customer_score_seen", "value_tier")
