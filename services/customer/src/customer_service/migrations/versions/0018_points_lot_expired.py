"""what of each points lot expired

Revision ID: 0018
Revises: 0017
Create Date: 2027-01-27 09:00:00.000000

A refund takes back what its sale earned, in proportion; a sale whose points had expired was
taken back again from the customer's other points, which expiry had not touched. Each lot now
keeps what of it expired (the daily job and an imported history's at-once expiry set it), and a
refund leaves that part alone.

Lots an imported history earned already expired are known (their ``expire`` row names the same
purchase) and are filled in. Lots the daily job expired before this revision are not: their
``expire`` rows sum a customer's lots of a day, so what each lot lost is not recorded, and a
refund of their sales takes back what it did before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "points_entry",
        sa.Column("expired", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.create_check_constraint("ck_points_entry_expired", "points_entry", "expired >= 0")
    op.execute(
        """
        UPDATE points_entry e SET expired = e.points
        WHERE e.kind = 'earn' AND e.remaining = 0 AND EXISTS (
            SELECT 1 FROM points_entry x
            WHERE x.kind = 'expire' AND x.store_id = e.store_id
              AND x.customer_id = e.customer_id AND x.reference = e.reference
              AND x.points = -e.points)
        """
    )


def downgrade() -> None:
    op.drop_constraint("ck_points_entry_expired", "points_entry", type_="check")
    op.drop_column("points_entry", "expired")
