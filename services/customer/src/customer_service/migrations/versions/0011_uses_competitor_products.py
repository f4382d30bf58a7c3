"""the file's "other health products in use" flag, beside the encrypted health data

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-20 10:00:00.000000

``payload.file`` carries whether the file records other health products (scoring's loyalty:
``switcher``) and never the health data itself; the flag is written with the health data, so
building an event decrypts nothing. Files that already hold health data get it here.
"""

from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def upgrade() -> None:
    op.add_column(
        "customer",
        sa.Column(
            "uses_competitor_products",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
        ),
    )
    _flag_files_with_other_products()


def _flag_files_with_other_products() -> None:
    from crm_libs.field_crypto import FieldCipher
    from customer_service.config import Settings

    bind = op.get_bind()
    after = ""
    cipher: FieldCipher | None = None
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, health_encrypted FROM customer "
                "WHERE health_encrypted IS NOT NULL AND id > :after ORDER BY id LIMIT :n"
            ),
            {"after": after, "n": _BATCH},
        ).all()
        if not rows:
            return
        cipher = cipher or FieldCipher(Settings().field_encryption_keys)
        flagged = [
            customer_id
            for customer_id, sealed in rows
            if orjson.loads(cipher.decrypt(sealed)).get("other_health_products")
        ]
        if flagged:
            bind.execute(
                sa.text("UPDATE customer SET uses_competitor_products = true WHERE id = ANY(:ids)"),
                {"ids": flagged},
            )
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_column("customer", "uses_competitor_products")
