"""the value tiers' listing index holds the customers who bought

Revision ID: 0022
Revises: 0021
Create Date: 2027-02-10 10:00:00.000000

Every file starts as a prospect, and each of a spreadsheet import's hundred thousand went into
``ix_customer_score_store_tier`` under ``prospect``: about a quarter of what inserting a
prospect's score row cost the server. Partial (``value_tier <> 'prospect'``), it holds the
customers who bought; a listing of another tier carries the predicate as written
(scores/segments.py) and reads it as before, and a listing of a store's prospects reads the
store's rows in customer order (``ix_customer_score_store_customer``), where prospects are most
rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_customer_score_store_tier"
COLUMNS = ["store_id", "value_tier", "customer_id"]


def upgrade() -> None:
    op.drop_index(NAME, table_name="customer_score")
    op.create_index(
        NAME, "customer_score", COLUMNS, postgresql_where=sa.text("value_tier <> 'prospect'")
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="customer_score")
    op.create_index(NAME, "customer_score", COLUMNS)
