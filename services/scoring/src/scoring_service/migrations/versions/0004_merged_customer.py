"""merged customers: the merged-away files and the survivor holding their purchases now

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14 09:00:00.000000

A purchase of a merged-away file can arrive after its ``customer.merged`` (another topic, no
order between the two): scoring looks the buyer up here and folds the purchase into the
survivor (scores/merges.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "merged_customer",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("survivor_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column(
            "merged_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    # A survivor merged on in turn: its own merged-away files follow it to the next survivor.
    op.create_index("ix_merged_customer_survivor", "merged_customer", ["survivor_id"])


def downgrade() -> None:
    op.drop_index("ix_merged_customer_survivor", table_name="merged_customer")
    op.drop_table("merged_customer")
