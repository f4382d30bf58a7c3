"""model fits: BG/NBD and Gamma-Gamma parameters per store (or pooled), with the fit's facts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-20 09:10:00.000000

A fit is kept, not overwritten: the newest of a store is what predictions use, and the rows
before it show how the parameters moved. ``store_id`` is null for the pooled fit that stores
with too few repeat customers fall back to.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_fit",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=True),
        sa.Column(
            "fitted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("calibration_end", sa.Date(), nullable=False),
        sa.Column("time_unit", sa.Text(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("repeat_customers", sa.Integer(), nullable=False),
        sa.Column("r", sa.Float(), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("a", sa.Float(), nullable=False),
        sa.Column("b", sa.Float(), nullable=False),
        sa.Column("bgnbd_log_likelihood", sa.Float(), nullable=False),
        sa.Column("p", sa.Float(), nullable=True),
        sa.Column("q", sa.Float(), nullable=True),
        sa.Column("v", sa.Float(), nullable=True),
        sa.Column("gamma_gamma_log_likelihood", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_model_fit_store_fitted", "model_fit", ["store_id", "fitted_at"])


def downgrade() -> None:
    op.drop_index("ix_model_fit_store_fitted", table_name="model_fit")
    op.drop_table("model_fit")
