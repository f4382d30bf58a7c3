"""the row the consumer writes into the customer files' copy, as a type

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 12:00:00.000000

The consumer upserts a batch's newest version of each file in one statement
(customers/service.py). Sent as fourteen arrays, one per column, the driver checked every one
of the batch's values for being an array itself (a Python-level check per value: about a
quarter of the consumer's CPU for an import's registrations). Sent as one array of rows of this
type, it checks each row once and encodes its fields as it did. The attributes are the copy's
columns that service names (``_COPIED``), in its order: a column added there is added here too.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TYPE customer_file_copy AS (
            customer_id text,
            store_id text,
            status text,
            merged_into text,
            timezone text,
            owner_staff_id text,
            birthday date,
            birthday_calendar text,
            wedding_anniversary date,
            spouse_customer_id text,
            sms_consent_granted boolean,
            sms_consent_at timestamptz,
            sms_consent_channel text,
            version integer
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TYPE customer_file_copy")
