"""refill reminders, routine cadence, recovery: the scores' read copy, stop reasons, the routine
job's day per store, a recovery task's reason, one open refill and recovery per customer

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-17 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_score_seen",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("lifecycle", sa.Text(), nullable=True),
        sa.Column("supply_runs_out_on", sa.Date(), nullable=True),
        sa.Column("expected_purchase_on", sa.Date(), nullable=True),
        sa.Column("refill_planned_for", sa.Date(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "stop_signal",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_reason", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index("ix_stop_signal_store", "stop_signal", ["store_id"], unique=False)
    op.create_table(
        "routine_run",
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
    op.add_column("task", sa.Column("recovery_reason", sa.Text(), nullable=True))
    op.add_column("task", sa.Column("with_manager", sa.Boolean(), nullable=True))
    op.create_index(
        "ux_task_open_refill",
        "task",
        ["customer_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'refill' AND status = 'open'"),
    )
    op.create_index(
        "ux_task_open_recovery",
        "task",
        ["customer_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'recovery' AND status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("ux_task_open_recovery", table_name="task")
    op.drop_index("ux_task_open_refill", table_name="task")
    op.drop_column("task", "with_manager")
    op.drop_column("task", "recovery_reason")
    op.drop_table("routine_run")
    op.drop_index("ix_stop_signal_store", table_name="stop_signal")
    op.drop_table("stop_signal")
    op.drop_table("customer_score_seen")
