"""the take-back's index holds pool assignments only

Revision ID: 0020
Revises: 0019
Create Date: 2027-02-10 09:00:00.000000

The take-back's cohort (ownership/pool.py) reads the pool files a staff member received: the
``pool_assignment`` entries of the ownership trail. Its index held every entry, so each file
registered or imported with an owner (its ``registered`` entry) paid for a key it is never
found by: a third of the trail's writing in an import. It now holds the pool assignments only,
their kind no longer in the key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ownership_change_pool_received",
        "ownership_change",
        ["store_id", "to_staff_id", "at"],
        postgresql_where=sa.text("kind = 'pool_assignment'"),
    )
    op.drop_index("ix_ownership_change_received", table_name="ownership_change")


def downgrade() -> None:
    op.create_index(
        "ix_ownership_change_received",
        "ownership_change",
        ["store_id", "to_staff_id", "kind", "at"],
    )
    op.drop_index("ix_ownership_change_pool_received", table_name="ownership_change")
