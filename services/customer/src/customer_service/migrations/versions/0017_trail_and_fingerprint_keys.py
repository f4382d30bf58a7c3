"""no foreign key from the ownership trail to its file, nor from an import's fingerprints to
their store

Revision ID: 0017
Revises: 0016
Create Date: 2027-01-20 10:00:00.000000

Each row written to either table paid a look-up of the row it named and a share lock on it: for
the trail a lock on a file its own transaction had just copied in (a WAL record per file of an
import), for a fingerprint a lock on the store's row, once per sheet row. Neither key could
fail: files are never deleted (erasure anonymises the file in place, a merge leaves it as a
pointer) and each trail row is written in the transaction that writes or locks its file; a
fingerprint is written by an import job of its store, whose own row keeps the key to the store.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("ownership_change_customer_id_fkey", "ownership_change", type_="foreignkey")
    op.drop_constraint("import_fingerprint_store_id_fkey", "import_fingerprint", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(
        "import_fingerprint_store_id_fkey", "import_fingerprint", "store", ["store_id"], ["id"]
    )
    op.create_foreign_key(
        "ownership_change_customer_id_fkey", "ownership_change", "customer", ["customer_id"], ["id"]
    )
