"""refunds kept and applied to their purchases' facts, and each store's tier rules

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-22 09:00:00.000000

``purchase_refund_fact``: every ``purchase.refunded`` scoring has seen, keyed by the refund (a
replay adds nothing). A refund is applied to its purchase's fact once both are stored
(scores/refund_facts.py): the fact's ``total`` and ``supply_days`` become what is left of the
purchase, and ``wholly_refunded`` marks one with nothing left. ``applied`` is false while the
purchase is not stored yet; the partial index holds only those, so a batch of purchases looks
its ids up in an index that is empty in the normal run of things.

``store_tier_rules``: a store's own pyramid bounds, window and classification thresholds
(scores/tier_rules.py); a store without a row uses DOMAIN.md's defaults.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "purchase_fact",
        sa.Column("wholly_refunded", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_table(
        "purchase_refund_fact",
        sa.Column("refund_id", sa.Text(), nullable=False),
        sa.Column("purchase_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total", sa.Numeric(14, 2), nullable=False),
        sa.Column("supply_days", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("refund_id"),
    )
    op.create_index(
        "ix_purchase_refund_fact_pending",
        "purchase_refund_fact",
        ["purchase_id"],
        postgresql_where=sa.text("NOT applied"),
    )
    op.create_index("ix_purchase_refund_fact_purchase", "purchase_refund_fact", ["purchase_id"])
    op.create_table(
        "store_tier_rules",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("vip_share", sa.Numeric(7, 6), nullable=False),
        sa.Column("major_share", sa.Numeric(7, 6), nullable=False),
        sa.Column("medium_share", sa.Numeric(7, 6), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("lost_after_days", sa.Integer(), nullable=False),
        sa.Column("stopped_after_days", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("store_id"),
    )


def downgrade() -> None:
    op.drop_table("store_tier_rules")
    op.drop_index("ix_purchase_refund_fact_purchase", table_name="purchase_refund_fact")
    op.drop_index("ix_purchase_refund_fact_pending", table_name="purchase_refund_fact")
    op.drop_table("purchase_refund_fact")
    op.drop_column("purchase_fact", "wholly_refunded")
