"""a store's visits by time, for the staff statistics of a period

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 09:00:00.000000

``GET /staff/{id}/stats`` and ``GET /stores/{id}/staff-stats`` count the visits a store's staff
logged in a period; the only index leading with the store went on by customer, so each count
read every visit the store ever logged.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_visit_store_occurred", "visit", ["store_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_visit_store_occurred", table_name="visit")
