"""methods as data, task completion and rescheduling, visits, plans' ends, routine care,
idempotency keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-15 09:00:00.000000

A task's method was prose naming the phase's choice ("home_visit_or_phone"); it becomes one of
phone, home, in_store, message, expert_phone, and the choice moves to ``methods_allowed``. The
existing follow-up tasks are given their phase's values (as followups/phases.py had them when
this was written: a migration does not follow later edits of that table).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# phase: (method, methods_allowed, the prose it replaces)
_PHASE_METHODS = {
    1: ("home", ["home", "phone"], "home_visit_or_phone"),
    2: ("home", ["home", "phone"], "phone_or_home_visit_home_preferred"),
    3: ("phone", ["phone", "home"], "phone_or_home_visit_home_if_1_and_2_by_phone"),
    4: ("home", ["home", "expert_phone"], "staff_home_visit_and_or_expert_phone"),
    5: ("home", ["home", "expert_phone"], "staff_home_visit_and_or_expert_phone"),
}


def upgrade() -> None:
    op.add_column("task", sa.Column("methods_allowed", postgresql.ARRAY(sa.Text()), nullable=True))
    for column, kind in (
        ("done_at", sa.DateTime(timezone=True)),
        ("done_on", sa.Date()),
        ("done_by", sa.Text()),
        ("done_method", sa.Text()),
        ("rescheduled_from", sa.Date()),
        ("reschedule_reason", sa.Text()),
    ):
        op.add_column("task", sa.Column(column, kind, nullable=True))
    update = sa.text(
        "UPDATE task SET method = :method, methods_allowed = :allowed "
        "WHERE kind = 'follow_up' AND phase = :phase"
    ).bindparams(sa.bindparam("allowed", type_=postgresql.ARRAY(sa.Text())))
    for phase, (method, allowed, _) in _PHASE_METHODS.items():
        op.execute(update.bindparams(method=method, allowed=allowed, phase=phase))
    op.create_index(
        "ix_task_plan",
        "task",
        ["plan_id"],
        unique=False,
        postgresql_where=sa.text("plan_id IS NOT NULL"),
    )
    op.add_column("follow_up_plan", sa.Column("closed_reason", sa.Text(), nullable=True))
    op.add_column("follow_up_plan", sa.Column("ended_on", sa.Date(), nullable=True))
    op.create_index("ix_follow_up_plan_purchase", "follow_up_plan", ["purchase_id"], unique=False)
    op.create_table(
        "visit",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("staff_id", sa.Text(), nullable=True),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("satisfaction", sa.SmallInteger(), nullable=True),
        sa.Column("task_id", sa.Text(), nullable=True),
        sa.Column(
            "collected",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("next_task_id", sa.Text(), nullable=True),
        sa.Column("next_step", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_visit_store_customer", "visit", ["store_id", "customer_id", "id"], unique=False
    )
    op.create_index(
        "ix_visit_task",
        "visit",
        ["task_id"],
        unique=False,
        postgresql_where=sa.text("task_id IS NOT NULL"),
    )
    op.create_table(
        "customer_care",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("routine_since", sa.Date(), nullable=False),
        sa.Column("plan_id", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index("ix_customer_care_store", "customer_care", ["store_id"], unique=False)
    op.create_table(
        "idempotency_answer",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("scope", "key"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_answer")
    op.drop_index("ix_customer_care_store", table_name="customer_care")
    op.drop_table("customer_care")
    op.drop_index("ix_visit_task", table_name="visit")
    op.drop_index("ix_visit_store_customer", table_name="visit")
    op.drop_table("visit")
    op.drop_index("ix_follow_up_plan_purchase", table_name="follow_up_plan")
    op.drop_column("follow_up_plan", "ended_on")
    op.drop_column("follow_up_plan", "closed_reason")
    op.drop_index("ix_task_plan", table_name="task")
    restore = sa.text("UPDATE task SET method = :prose WHERE kind = 'follow_up' AND phase = :phase")
    for phase, (_, _, prose) in _PHASE_METHODS.items():
        op.execute(restore.bindparams(prose=prose, phase=phase))
    for column in (
        "reschedule_reason",
        "rescheduled_from",
        "done_method",
        "done_by",
        "done_on",
        "done_at",
        "methods_allowed",
    ):
        op.drop_column("task", column)
