"""customer merge: the trail of merges

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14 09:00:00.000000

Duplicate candidates (customers/duplicates.py) need no index of their own: they read a store's
files once through an index that leads with the store and join them in memory (indexes on the
keys went unused: the planner read the store's rows once per rule through the store's index).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_merge",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("survivor_id", sa.Text(), nullable=False),
        sa.Column("duplicate_id", sa.Text(), nullable=False),
        sa.Column("merged_by", sa.Text(), nullable=False),
        sa.Column(
            "merged_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "taken", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column(
            "moved", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.ForeignKeyConstraint(["survivor_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["duplicate_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
        # A file is merged away once: the pointer never moves.
        sa.UniqueConstraint("duplicate_id", name="uq_customer_merge_duplicate"),
    )
    op.create_index(
        "ix_customer_merge_store_survivor", "customer_merge", ["store_id", "survivor_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_customer_merge_store_survivor", table_name="customer_merge")
    op.drop_table("customer_merge")
