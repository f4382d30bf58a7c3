"""the outbox's rows cheaper to stage and to mark sent: no unique index on ``event_id``, a BRIN
index for the retention purge

Revision ID: 0016
Revises: 0015
Create Date: 2027-01-20 09:00:00.000000

Every staged event went into a unique btree of its 36-character id, and every row the relay
marked sent took a new entry in it and in the btree of ``published_at``: about half of what
staging and publishing an event cost the server (a 100,000-row import stages one per file).
Event ids are random UUIDs made by the staging code, and consumers drop an event they applied
already (by its id), so the constraint guarded nothing. The retention purge reads
``published_at``, which grows with the table's order: a BRIN index of it is a few pages, and
marking a row adds nothing to it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("outbox_event_event_id_key", "outbox_event", type_="unique")
    op.drop_index("ix_outbox_event_published_at", table_name="outbox_event")
    op.create_index(
        "ix_outbox_event_published_at",
        "outbox_event",
        ["published_at"],
        postgresql_using="brin",
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_event_published_at", table_name="outbox_event")
    op.create_index(
        "ix_outbox_event_published_at",
        "outbox_event",
        ["published_at"],
        postgresql_where="published_at IS NOT NULL",
    )
    op.create_unique_constraint("outbox_event_event_id_key", "outbox_event", ["event_id"])
