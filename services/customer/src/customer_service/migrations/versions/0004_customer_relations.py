"""customer relations: family links between files of one store, one row per direction

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_relation",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("related_customer_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "customer_id <> related_customer_id", name="ck_customer_relation_not_self"
        ),
        sa.CheckConstraint(
            "kind IN ('spouse', 'parent', 'child', 'sibling', 'other')",
            name="ck_customer_relation_kind",
        ),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["related_customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.PrimaryKeyConstraint("store_id", "customer_id", "related_customer_id"),
    )
    op.create_index(
        "ux_customer_relation_one_spouse",
        "customer_relation",
        ["store_id", "customer_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'spouse'"),
    )


def downgrade() -> None:
    op.drop_index("ux_customer_relation_one_spouse", table_name="customer_relation")
    op.drop_table("customer_relation")
