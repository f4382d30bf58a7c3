"""The import job's tables, declared for the schema check (migration 0007 creates them).

The job code writes them with plain SQL on the driver connection; these declarations are what
``alembic check`` compares the database with, so a drift between the two is caught in CI.
"""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlmodel import SQLModel

_METADATA = SQLModel.metadata

import_job = Table(
    "import_job",
    _METADATA,
    Column("id", Text, primary_key=True),
    Column("store_id", Text, ForeignKey("store.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="queued"),
    Column("filename", Text),
    Column("size", BigInteger, nullable=False),
    Column("total", Integer),
    Column("done", Integer, nullable=False, server_default="0"),
    Column("created", Integer, nullable=False, server_default="0"),
    Column("skipped", Integer, nullable=False, server_default="0"),
    Column("error_count", Integer, nullable=False, server_default="0"),
    Column("failure", Text),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    # Who runs it and until when: a worker that stops renewing its lease (a crash) leaves the
    # job to be claimed again and resumed after its last committed chunk.
    Column("lease_owner", Text),
    Column("lease_until", DateTime(timezone=True)),
    CheckConstraint(
        "status IN ('queued', 'running', 'done', 'failed')", name="ck_import_job_status"
    ),
    CheckConstraint("kind IN ('customers', 'purchases')", name="ck_import_job_kind"),
    # What workers claim: the unfinished jobs only.
    Index(
        "ix_import_job_unfinished",
        "created_at",
        postgresql_where=text("status IN ('queued', 'running')"),
    ),
    Index("ix_import_job_store", "store_id", "created_at"),
)

import_error = Table(
    "import_error",
    _METADATA,
    Column("job_id", Text, ForeignKey("import_job.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("row", Integer, nullable=False),
    Column("field", Text, nullable=False),
    Column("message", Text, nullable=False),
    PrimaryKeyConstraint("job_id", "seq"),
)

import_upload_chunk = Table(
    "import_upload_chunk",
    _METADATA,
    Column("job_id", Text, ForeignKey("import_job.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("job_id", "seq"),
)

import_fingerprint = Table(
    "import_fingerprint",
    _METADATA,
    # No foreign key: a fingerprint is written by an import job of its store, whose row keeps
    # the key (the key cost every sheet row a look-up and a lock of the store: migration 0017).
    Column("store_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("job_id", Text, nullable=False),
    # The file or purchase the row became.
    Column("record_id", Text, nullable=False),
    PrimaryKeyConstraint("store_id", "kind", "fingerprint"),
)
