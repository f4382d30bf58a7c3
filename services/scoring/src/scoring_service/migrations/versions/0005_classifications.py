"""the classifications of a score: ladder (with a manager's floor), loyalty, lifecycle, RFM

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20 09:00:00.000000

Each is a column of ``customer_score`` beside the value tier, so a segment listing filters one
table. ``classified_on`` is the store-local day the time-driven ones (lifecycle, RFM) were last
computed for: the daily ageing skips a customer already aged that day.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT_COLUMNS = (
    "ladder_level",
    "ladder_floor",
    "ladder_floor_reason",
    "ladder_floor_by",
    "loyalty",
    "lifecycle",
    "rfm_segment",
)
_SMALLINT_COLUMNS = ("ladder_score", "rfm_r", "rfm_f", "rfm_m")


def upgrade() -> None:
    for name in _TEXT_COLUMNS:
        op.add_column("customer_score", sa.Column(name, sa.Text(), nullable=True))
    for name in _SMALLINT_COLUMNS:
        op.add_column("customer_score", sa.Column(name, sa.SmallInteger(), nullable=True))
    op.add_column("customer_score", sa.Column("classified_on", sa.Date(), nullable=True))
    # Segment listings page through one store by customer id.
    op.create_index(
        "ix_customer_score_store_customer", "customer_score", ["store_id", "customer_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_customer_score_store_customer", table_name="customer_score")
    for name in ("classified_on", *_SMALLINT_COLUMNS, *_TEXT_COLUMNS):
        op.drop_column("customer_score", name)
