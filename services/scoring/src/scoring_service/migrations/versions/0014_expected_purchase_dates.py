"""the expected purchase date kept per customer, and the run-out last published

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-24 09:00:00.000000

``score.changed`` carries ``supply_runs_out_on`` and ``expected_purchase_on`` and is published
when either moves (scores/expected_dates.py): the expected date is kept so that the score's
read shows what was published, and the run-out last published so that a statement that moved
the run-out without publishing it (a rebuild) is caught up by the next one. Rows already held
get the run-out as their expected date and no published run-out: the first ageing publishes
each buyer's dates once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customer_score", sa.Column("expected_purchase_on", sa.Date(), nullable=True))
    op.add_column("customer_score", sa.Column("announced_runs_out_on", sa.Date(), nullable=True))
    op.execute(
        "UPDATE customer_score SET expected_purchase_on = supply_runs_out_on"
        " WHERE purchase_count > 0 AND supply_runs_out_on IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_column("customer_score", "announced_runs_out_on")
    op.drop_column("customer_score", "expected_purchase_on")
