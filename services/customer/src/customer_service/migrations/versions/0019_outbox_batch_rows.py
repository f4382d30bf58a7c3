"""the outbox holds batch rows: many events of one topic staged as one row

Revision ID: 0019
Revises: 0018
Create Date: 2027-02-03 09:00:00.000000

A bulk writer (a spreadsheet import stages a chunk's thousand registrations) stages its events
as one row (``crm_libs.events.outbox.stage_batch``): their customers in ``keys``, their
envelopes' texts in ``envelopes``, stored out of line and uncompressed. A row per event was
a full row version through the table's indexes to stage, another to mark sent, and the claim's
reading of each: a fifth of what the customer database spent on an imported file. The relay
sends a batch row's events one by one, each on its customer's partition. Existing rows stay as
they are.
"""

from collections.abc import Sequence

from alembic import op

from crm_libs.events.outbox import BATCH_ROWS_SQL, DROP_BATCH_ROWS_SQL

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for statement in BATCH_ROWS_SQL:
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP_BATCH_ROWS_SQL:
        op.execute(statement)
