"""the ladder, lifecycle and RFM listings' indexes hold only classified customers

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-23 09:00:00.000000

A file with no purchase (a prospect: every imported or registered file until it buys) has no
ladder level, lifecycle or RFM segment, yet each of its score rows went into these three
indexes too: a spreadsheet import of 100,000 files inserted 300,000 entries nobody can list by
(a listing filters by a value, which is never NULL). Partial (``WHERE <column> IS NOT NULL``),
they hold the customers who bought; a filter ``<column> = $n`` implies the predicate, so the
segment listings (scores/segments.py) use them as before. Value tier and loyalty are every
file's (``prospect``, ``floating``), so their indexes stay whole.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Index name suffix -> the column a prospect leaves NULL.
PARTIAL = {"lifecycle": "lifecycle", "ladder": "ladder_level", "rfm": "rfm_segment"}


def upgrade() -> None:
    for suffix, column in PARTIAL.items():
        name = f"ix_customer_score_store_{suffix}"
        op.drop_index(name, table_name="customer_score")
        op.create_index(
            name,
            "customer_score",
            ["store_id", column, "customer_id"],
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
        )


def downgrade() -> None:
    for suffix, column in PARTIAL.items():
        name = f"ix_customer_score_store_{suffix}"
        op.drop_index(name, table_name="customer_score")
        op.create_index(name, "customer_score", ["store_id", column, "customer_id"])
