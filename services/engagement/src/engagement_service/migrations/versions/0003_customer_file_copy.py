"""engagement's read copy of the customer files; why a task was closed

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_file",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("merged_into", sa.Text(), nullable=True),
        sa.Column("timezone", sa.Text(), nullable=True),
        sa.Column("owner_staff_id", sa.Text(), nullable=True),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("birthday_calendar", sa.Text(), nullable=True),
        sa.Column("wedding_anniversary", sa.Date(), nullable=True),
        sa.Column("spouse_customer_id", sa.Text(), nullable=True),
        sa.Column(
            "sms_consent_granted", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("sms_consent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sms_consent_channel", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.add_column("task", sa.Column("closed_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("task", "closed_reason")
    op.drop_table("customer_file")
