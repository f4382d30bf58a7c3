"""contraindications and allergens on products, acknowledged warnings on purchases, refunds

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NO_TERMS = sa.text("'{}'::text[]")


def upgrade() -> None:
    op.add_column(
        "product",
        sa.Column(
            "contraindications",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=_NO_TERMS,
        ),
    )
    op.add_column(
        "product",
        sa.Column(
            "allergens", postgresql.ARRAY(sa.Text()), nullable=False, server_default=_NO_TERMS
        ),
    )
    # Who sold despite a contraindication warning, when, and what matched (encrypted: the
    # matches are health data).
    op.add_column("purchase", sa.Column("acknowledged_by", sa.Text(), nullable=True))
    op.add_column(
        "purchase", sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "purchase", sa.Column("acknowledged_warnings_encrypted", sa.Text(), nullable=True)
    )
    op.create_table(
        "purchase_refund",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("purchase_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("total", sa.Numeric(14, 2), nullable=False),
        sa.Column("refunded_by", sa.Text(), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('family_objection', 'pushed_too_hard', 'no_effect', 'quality', 'other')",
            name="ck_purchase_refund_reason",
        ),
        sa.ForeignKeyConstraint(["purchase_id"], ["purchase.id"]),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_purchase_refund_purchase_id", "purchase_refund", ["purchase_id"])
    op.create_table(
        "purchase_refund_line",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("refund_id", sa.Text(), nullable=False),
        sa.Column("purchase_id", sa.Text(), nullable=False),
        sa.Column("purchase_line_id", sa.BigInteger(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(12, 2), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.CheckConstraint("qty > 0", name="ck_purchase_refund_line_qty_positive"),
        sa.ForeignKeyConstraint(["refund_id"], ["purchase_refund.id"]),
        sa.ForeignKeyConstraint(["purchase_id"], ["purchase.id"]),
        sa.ForeignKeyConstraint(["purchase_line_id"], ["purchase_line.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    # What is left to refund of a purchase's lines is read by purchase.
    op.create_index("ix_purchase_refund_line_purchase_id", "purchase_refund_line", ["purchase_id"])


def downgrade() -> None:
    op.drop_index("ix_purchase_refund_line_purchase_id", table_name="purchase_refund_line")
    op.drop_table("purchase_refund_line")
    op.drop_index("ix_purchase_refund_purchase_id", table_name="purchase_refund")
    op.drop_table("purchase_refund")
    op.drop_column("purchase", "acknowledged_warnings_encrypted")
    op.drop_column("purchase", "acknowledged_at")
    op.drop_column("purchase", "acknowledged_by")
    op.drop_column("product", "allergens")
    op.drop_column("product", "contraindications")
