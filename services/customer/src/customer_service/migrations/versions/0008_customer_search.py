"""customer search: the read copy of scores (tier, lifecycle, ladder) on the file, pg_trgm name
fragments, and the consumer's processed events

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-12 09:00:00.000000

The copy is kept from ``crm.scores.v1`` by the service's consumer (``customer_service.handlers``)
in columns of ``customer`` itself, so that one index leading with the store serves a tier or
lifecycle filter, alone or beside a name or phone search. A file with no score yet has had no
purchase: it is a ``prospect`` (DOMAIN.md §3) until its first ``score.changed`` arrives.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Trusted since PostgreSQL 13: a database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # A constant default: no table rewrite, whatever the number of files.
    op.add_column(
        "customer",
        sa.Column("value_tier", sa.Text(), nullable=False, server_default="prospect"),
    )
    op.add_column("customer", sa.Column("lifecycle", sa.Text(), nullable=True))
    op.add_column("customer", sa.Column("ladder_level", sa.Text(), nullable=True))
    op.add_column("customer", sa.Column("score_version", sa.BigInteger(), nullable=True))
    # Name fragments (Han text, three characters or more anywhere in the name; one or two at its
    # start or end, where pg_trgm pads the word): the store leads, by btree_gin (0006).
    op.create_index(
        "ix_customer_store_name_trgm",
        "customer",
        ["store_id", "name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index("ix_customer_store_tier", "customer", ["store_id", "value_tier", "id"])
    op.create_index("ix_customer_store_lifecycle", "customer", ["store_id", "lifecycle", "id"])
    op.create_table(
        "processed_event",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )


def downgrade() -> None:
    op.drop_table("processed_event")
    for index in ("ix_customer_store_lifecycle", "ix_customer_store_tier"):
        op.drop_index(index, table_name="customer")
    op.drop_index("ix_customer_store_name_trgm", table_name="customer")
    for column in ("score_version", "ladder_level", "lifecycle", "value_tier"):
        op.drop_column("customer", column)
    # pg_trgm stays: other objects may have come to use it.
