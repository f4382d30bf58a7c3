"""outbox retention, parking and broker epoch

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox_event", sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox_event", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index(
        "ix_outbox_event_unpublished",
        table_name="outbox_event",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_index(
        "ix_outbox_event_unpublished",
        "outbox_event",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL AND parked_at IS NULL"),
    )
    op.create_index(
        "ix_outbox_event_retrying",
        "outbox_event",
        ["key", "id"],
        unique=False,
        postgresql_where=sa.text(
            "published_at IS NULL AND parked_at IS NULL AND retry_at IS NOT NULL"
        ),
    )
    op.create_index(
        "ix_outbox_event_parked",
        "outbox_event",
        ["id"],
        unique=False,
        postgresql_where=sa.text("parked_at IS NOT NULL"),
    )
    op.create_index(
        "ix_outbox_event_published_at",
        "outbox_event",
        ["published_at"],
        unique=False,
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )
    op.create_table(
        "outbox_broker_epoch",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("marker", sa.Text(), nullable=False),
        sa.Column("marker_offset", sa.BigInteger(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("id = 1", name="ck_outbox_broker_epoch_single_row"),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("outbox_broker_epoch")
    op.drop_index("ix_outbox_event_published_at", table_name="outbox_event")
    op.drop_index("ix_outbox_event_parked", table_name="outbox_event")
    op.drop_index("ix_outbox_event_retrying", table_name="outbox_event")
    op.drop_index("ix_outbox_event_unpublished", table_name="outbox_event")
    op.create_index(
        "ix_outbox_event_unpublished",
        "outbox_event",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_column("outbox_event", "parked_at")
    op.drop_column("outbox_event", "retry_at")
