"""segment listings' indexes, and the day each store was last aged

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-20 10:00:00.000000

``GET /scores`` pages through one store in customer order filtered by any of value tier,
lifecycle, ladder, loyalty and RFM segment. One index per filter, each ``(store_id, <filter>,
customer_id)``: a page filtered by one value reads exactly its rows in order, and one filtered by
several reads the rows of its rarest value (a vip page of a million-customer store reads ten
thousand index entries at most, never the store).

``store_ageing``: the store-local day the daily ageing (scores/scheduled.py) last aged each store,
written in the transaction that aged it, so a restart or another replica never ages it twice
that day, and finding the stores due costs one row per store rather than a scan of their scores.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Index name suffix -> the filtered column (scores/segments.py's filters).
SEGMENT_INDEXES = {
    "tier": "value_tier",
    "lifecycle": "lifecycle",
    "ladder": "ladder_level",
    "loyalty": "loyalty",
    "rfm": "rfm_segment",
}


def upgrade() -> None:
    for suffix, column in SEGMENT_INDEXES.items():
        op.create_index(
            f"ix_customer_score_store_{suffix}",
            "customer_score",
            ["store_id", column, "customer_id"],
        )
    op.create_table(
        "store_ageing",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("aged_on", sa.Date(), nullable=False),
        sa.Column(
            "aged_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("store_id"),
    )


def downgrade() -> None:
    op.drop_table("store_ageing")
    for suffix in SEGMENT_INDEXES:
        op.drop_index(f"ix_customer_score_store_{suffix}", table_name="customer_score")
