"""a batch row's envelopes stored packed: one zstd-compressed text

Revision ID: 0021
Revises: 0020
Create Date: 2027-02-10 09:00:00.000000

A batch row (``crm_libs.events.outbox.stage_batch``) held its thousand envelopes as an array of
texts, some 600 kB out of line: the insert wrote them to the table's TOAST and the WAL in
300 pieces, each with an index entry. Packed (``envelopes_packed``, zstd) they are about
100 kB. Rows staged before keep their texts, and the relay reads both.
"""

from collections.abc import Sequence

from alembic import op

from crm_libs.events.outbox import DROP_PACKED_ROWS_SQL, PACKED_ROWS_SQL, unpack_rows

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for statement in PACKED_ROWS_SQL:
        op.execute(statement)


def downgrade() -> None:
    unpack_rows(op.get_bind())
    for statement in DROP_PACKED_ROWS_SQL:
        op.execute(statement)
