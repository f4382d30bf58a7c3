"""complaints: the complaint and its steps, each once per round

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-22 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "complaint",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("points", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("next_step", sa.Text(), nullable=True),
        sa.Column("round", sa.Integer(), server_default="1", nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("opened_by", sa.Text(), nullable=False),
        sa.Column("opened_by_staff_id", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("resolved_on_the_spot", sa.Boolean(), nullable=True),
        sa.Column("follow_up_task_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_complaint_store_customer", "complaint", ["store_id", "customer_id", "id"])
    op.create_index("ix_complaint_store_opened", "complaint", ["store_id", "opened_on"])
    op.create_index(
        "ix_complaint_store_closed",
        "complaint",
        ["store_id", "closed_on"],
        postgresql_where=sa.text("closed_on IS NOT NULL"),
    )
    op.create_table(
        "complaint_step",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("complaint_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_by", sa.Text(), nullable=False),
        sa.Column("staff_id", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("solution", sa.Text(), nullable=True),
        sa.Column("compensation", sa.Numeric(12, 2), nullable=True),
        sa.Column("compensation_note", sa.Text(), nullable=True),
        sa.Column("satisfied", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("complaint_id", "round", "step"),
    )


def downgrade() -> None:
    op.drop_table("complaint_step")
    op.drop_index("ix_complaint_store_closed", table_name="complaint")
    op.drop_index("ix_complaint_store_opened", table_name="complaint")
    op.drop_index("ix_complaint_store_customer", table_name="complaint")
    op.drop_table("complaint")
