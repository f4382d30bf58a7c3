"""the analysis's side tables, and a store's purchases by day

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-28 09:00:00.000000

What the analysis (scoring_service/analysis/) keeps beside the purchase facts, each row keyed by
the event it came from: a purchase's serving staff, its lines' and its refunds' lines' amounts,
the district of each customer's address, and the visits logged (for the best contact times).
Facts stored before have no such rows: they count by month, tier and churn, and under "none"
for staff and region; products and categories show the purchases consumed since.

``ix_purchase_fact_store_day``: the consumption structure reads a store's facts of a period.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_purchase_fact_store_day", "purchase_fact", ["store_id", "purchased_on"], unique=False
    )
    op.create_table(
        "analysis_sale_staff",
        sa.Column("purchase_id", sa.Text(), primary_key=True),
        sa.Column("staff_id", sa.Text(), nullable=True),
    )
    op.create_table(
        "analysis_sale_line",
        sa.Column("source_id", sa.Text(), primary_key=True),
        sa.Column("line_no", sa.SmallInteger(), primary_key=True),
        sa.Column("purchase_id", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
    )
    op.create_index("ix_analysis_sale_line_purchase", "analysis_sale_line", ["purchase_id"])
    op.create_table(
        "analysis_customer_district",
        sa.Column("customer_id", sa.Text(), primary_key=True),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "analysis_contact",
        sa.Column("visit_id", sa.Text(), primary_key=True),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("reached", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_analysis_contact_store_at", "analysis_contact", ["store_id", "occurred_at"])


def downgrade() -> None:
    op.drop_table("analysis_contact")
    op.drop_table("analysis_customer_district")
    op.drop_table("analysis_sale_line")
    op.drop_table("analysis_sale_staff")
    op.drop_index("ix_purchase_fact_store_day", table_name="purchase_fact")
