"""purchase facts keep the store-local day and time zone

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:00:00.000000

A purchase recorded after a newer one (back-dated) makes scoring recompute the customer's
supply run-out from every stored fact in purchase-date order, which needs each fact's day in
the store's time zone (``purchased_on``) and that zone. Existing facts get them from the
customer's time zone in ``customer_score``, UTC where there is none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("purchase_fact", sa.Column("purchased_on", sa.Date(), nullable=True))
    op.add_column("purchase_fact", sa.Column("timezone", sa.Text(), nullable=True))
    op.execute(
        """
        UPDATE purchase_fact AS f
        SET timezone = COALESCE(cs.timezone, 'UTC')
        FROM purchase_fact AS p
        LEFT JOIN customer_score AS cs ON cs.customer_id = p.customer_id
        WHERE p.purchase_id = f.purchase_id
        """
    )
    op.execute("UPDATE purchase_fact SET purchased_on = (purchased_at AT TIME ZONE timezone)::date")
    op.alter_column("purchase_fact", "purchased_on", nullable=False)
    op.alter_column("purchase_fact", "timezone", nullable=False)


def downgrade() -> None:
    op.drop_column("purchase_fact", "timezone")
    op.drop_column("purchase_fact", "purchased_on")
