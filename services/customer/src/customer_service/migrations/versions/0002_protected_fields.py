"""protected fields

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:23:23.471066
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customer", sa.Column("id_number_encrypted", sa.Text(), nullable=True))
    op.add_column("customer", sa.Column("health_encrypted", sa.Text(), nullable=True))
    op.add_column(
        "customer", sa.Column("health_consent_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("customer", "health_consent_at")
    op.drop_column("customer", "health_encrypted")
    op.drop_column("customer", "id_number_encrypted")
