"""spreadsheet import jobs: the job with its progress and lease, its row errors, the uploaded
file in chunks (any replica's worker reads it), and the fingerprints of imported rows

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-12 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_job",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("store_id", sa.Text(), sa.ForeignKey("store.id"), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="queued"),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        # Who runs it and until when: a worker that stops renewing its lease (a crash) leaves
        # the job to be claimed again and resumed after its last committed chunk.
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name="ck_import_job_status"
        ),
        sa.CheckConstraint("kind IN ('customers', 'purchases')", name="ck_import_job_kind"),
    )
    # What workers claim: the unfinished jobs only.
    op.create_index(
        "ix_import_job_unfinished",
        "import_job",
        ["created_at"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_index("ix_import_job_store", "import_job", ["store_id", "created_at"])
    op.create_table(
        "import_error",
        sa.Column(
            "job_id", sa.Text(), sa.ForeignKey("import_job.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "seq"),
    )
    op.create_table(
        "import_upload_chunk",
        sa.Column(
            "job_id", sa.Text(), sa.ForeignKey("import_job.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "seq"),
    )
    op.create_table(
        "import_fingerprint",
        sa.Column("store_id", sa.Text(), sa.ForeignKey("store.id"), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        # The file or purchase the row became.
        sa.Column("record_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "kind", "fingerprint"),
    )


def downgrade() -> None:
    op.drop_table("import_fingerprint")
    op.drop_table("import_upload_chunk")
    op.drop_table("import_error")
    op.drop_index("ix_import_job_store", table_name="import_job")
    op.drop_index("ix_import_job_unfinished", table_name="import_job")
    op.drop_table("import_job")
