"""what the ladder, loyalty and lifecycle read besides purchases, and the score's history

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-20 09:20:00.000000

``customer_signal``: an event attended, a guest brought (``crm.engagement.v1``), keyed by the
member event and the customer so a replay adds nothing. ``customer_link``: the file's referrer
and whether it records competitors' products in use (``crm.customers.v1``), at the file's
version (an older event changes nothing). ``score_history``: every change of tier, ladder or
lifecycle with its cause. ``rfm_bound``: each store's quintile boundaries of recency, frequency
and money, so a batch scores its customers without ranking the whole store (scores/rfm.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_signal",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "source_id", "customer_id"),
    )
    op.create_index(
        "ix_customer_signal_customer", "customer_signal", ["customer_id", "kind", "occurred_at"]
    )
    op.create_table(
        "customer_link",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("referrer_id", sa.Text(), nullable=True),
        sa.Column("uses_competitor", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index("ix_customer_link_referrer", "customer_link", ["referrer_id"])
    op.create_table(
        "score_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("previous", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_score_history_customer", "score_history", ["customer_id", "id"])
    op.create_table(
        "rfm_bound",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("buyers", sa.Integer(), nullable=False),
        sa.Column("new_buyers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("recency", postgresql.ARRAY(sa.DateTime(timezone=True)), nullable=False),
        sa.Column("frequency", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("monetary", postgresql.ARRAY(sa.Numeric(14, 2)), nullable=False),
        sa.PrimaryKeyConstraint("store_id"),
    )


def downgrade() -> None:
    op.drop_table("rfm_bound")
    op.drop_index("ix_score_history_customer", table_name="score_history")
    op.drop_table("score_history")
    op.drop_index("ix_customer_link_referrer", table_name="customer_link")
    op.drop_table("customer_link")
    op.drop_index("ix_customer_signal_customer", table_name="customer_signal")
    op.drop_table("customer_signal")
