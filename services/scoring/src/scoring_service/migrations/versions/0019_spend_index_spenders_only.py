"""the spend index holds only customers with spend in the window

Revision ID: 0019
Revises: 0018
Create Date: 2027-01-27 10:00:00.000000

Every statement that reads ``ix_customer_score_store_spend`` ranks or counts a store's
spenders (``net_spend_365d > 0``: the value tiers' thresholds and reranking), yet each
prospect's score row went into it too, at spend 0: a 100,000-file import inserted 100,000
entries nobody reads by. Partial, it holds the spenders; the predicate the statements already
carry implies it. The reranking's no-spend branch reads the store's rows by tier instead.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_customer_score_store_spend"


def upgrade() -> None:
    op.drop_index(NAME, table_name="customer_score")
    op.create_index(
        NAME,
        "customer_score",
        ["store_id", "net_spend_365d"],
        postgresql_where=sa.text("net_spend_365d > 0"),
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="customer_score")
    op.create_index(NAME, "customer_score", ["store_id", "net_spend_365d"])
