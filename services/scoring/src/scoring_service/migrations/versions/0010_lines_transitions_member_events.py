"""what each purchase bought, the stores' product transitions, and upcoming member events

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-21 09:00:00.000000

``purchase_fact`` keeps each purchase's lines as three arrays of one length (sku, category,
boxes), written by the same binary COPY as the fact: no second table, no second statement per
batch, and a merge re-keys them with the fact. Facts stored before carry empty arrays (a
constant default: no table rewrite).

``product_transition``: per store, "after buying ``after_sku``, this many customers bought
``sku`` next" (``after_sku`` '' for a first purchase), computed set-based from the facts by the
daily ageing (scores/next_purchase.py), read by the score's next-product rule.

``member_event``: the stores' member events as ``crm.engagement.v1`` announces them
(``event.scheduled``, ``event.cancelled``), for the score's next event to invite to
(scores/member_events.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LINE_COLUMNS = {
    "line_skus": sa.Text(),
    "line_categories": sa.Text(),
    "line_quantities": sa.Integer(),
}


def upgrade() -> None:
    for name, item in _LINE_COLUMNS.items():
        op.add_column(
            "purchase_fact",
            sa.Column(name, postgresql.ARRAY(item), server_default=sa.text("'{}'"), nullable=False),
        )
    op.create_table(
        "product_transition",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("after_sku", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "after_sku", "sku"),
    )
    op.create_table(
        "member_event",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_member_event_store_starts", "member_event", ["store_id", "starts_at"])


def downgrade() -> None:
    op.drop_index("ix_member_event_store_starts", table_name="member_event")
    op.drop_table("member_event")
    op.drop_table("product_transition")
    for name in reversed(_LINE_COLUMNS):
        op.drop_column("purchase_fact", name)
