"""a visit's stop reason code, and a recovery task's step (review with the manager, then visit)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-24 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("visit", sa.Column("stop_reason", sa.Text(), nullable=True))
    # Recovery tasks opened before steps stay NULL, read as the first step.
    op.add_column("task", sa.Column("recovery_step", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("task", "recovery_step")
    op.drop_column("visit", "stop_reason")
