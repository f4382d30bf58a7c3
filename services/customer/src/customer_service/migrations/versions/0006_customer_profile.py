"""customer profile: the full file of API.md, owner, source, referrer, prospect, consents; phones
encrypted with keyed hashes and tails; pinyin name keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-11 09:00:00.000000

The plaintext ``phone`` column goes: each number moves into ``phones_encrypted`` (a one-entry
list, its kind read from the numbering plan) with its keyed hash and last four digits, under the
keys of the service's settings (``CRM_FIELD_ENCRYPTION_KEYS``, ``CRM_PHONE_HASH_KEY``): run it
with the same settings as the service. Every file gets its name's pinyin keys, and a prospect
stage: ``bought`` when it has a purchase, ``collected`` otherwise.
"""

from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NO_TEXTS = sa.text("'{}'::text[]")
_BATCH = 1000


def upgrade() -> None:
    # GIN indexes that lead with the store (a btree column) need btree_gin; trusted since
    # PostgreSQL 13, so a database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    for name, type_ in [
        ("name_keys", sa.Text()),
        ("ethnicity", sa.Text()),
        ("approximate_age", sa.Integer()),
        ("wedding_anniversary", sa.Date()),
        ("email", sa.Text()),
        ("address", postgresql.JSONB()),
        ("deep", postgresql.JSONB()),
        ("source", postgresql.JSONB()),
        ("referrer_id", sa.Text()),
        ("owner_staff_id", sa.Text()),
        ("prospect_stage", sa.Text()),
        ("prospect_grade", sa.Text()),
        ("consents", postgresql.JSONB()),
        ("phones_encrypted", sa.Text()),
        ("merged_into", sa.Text()),
    ]:
        op.add_column("customer", sa.Column(name, type_, nullable=True))
    op.add_column(
        "customer",
        sa.Column("birthday_calendar", sa.Text(), nullable=False, server_default="solar"),
    )
    for name in ("phone_hashes", "phone_tails"):
        op.add_column(
            "customer",
            sa.Column(name, postgresql.ARRAY(sa.Text()), nullable=False, server_default=_NO_TEXTS),
        )
    op.create_foreign_key(None, "customer", "customer", ["referrer_id"], ["id"])
    op.create_foreign_key(None, "customer", "customer", ["merged_into"], ["id"])
    op.create_foreign_key(None, "customer", "staff", ["owner_staff_id"], ["id"])
    op.create_check_constraint(
        "ck_customer_birthday_calendar", "customer", "birthday_calendar IN ('solar', 'lunar')"
    )
    op.create_check_constraint(
        "ck_customer_prospect_stage",
        "customer",
        "prospect_stage IN ('collected', 'contacted', 'invited', 'attended', 'bought')",
    )
    op.create_check_constraint(
        "ck_customer_prospect_grade", "customer", "prospect_grade IN ('A', 'B', 'C')"
    )
    op.create_check_constraint(
        "ck_customer_not_own_referrer", "customer", "referrer_id IS NULL OR referrer_id <> id"
    )

    _move_phones_and_name_keys()
    op.execute(
        """
        UPDATE customer c SET prospect_stage = CASE
            WHEN EXISTS (SELECT 1 FROM purchase p WHERE p.customer_id = c.id) THEN 'bought'
            ELSE 'collected' END
        """
    )

    op.drop_index("ix_customer_store_id_phone", table_name="customer")
    op.drop_column("customer", "phone")
    op.create_index(
        "ix_customer_store_phone_tails",
        "customer",
        ["store_id", "phone_tails"],
        postgresql_using="gin",
    )
    op.create_index(
        "ix_customer_store_phone_hashes",
        "customer",
        ["store_id", "phone_hashes"],
        postgresql_using="gin",
    )
    op.create_index(
        "ix_customer_store_name_keys",
        "customer",
        ["store_id", sa.text("to_tsvector('simple', name_keys)")],
        postgresql_using="gin",
    )
    op.create_index("ix_customer_store_owner", "customer", ["store_id", "owner_staff_id"])
    op.create_index("ix_customer_store_referrer", "customer", ["store_id", "referrer_id"])


def _move_phones_and_name_keys() -> None:
    """Encrypt every plaintext phone (with its hash and tail) and key every name, in batches."""
    from crm_libs.field_crypto import FieldCipher
    from crm_libs.problems import InvalidField
    from customer_service.config import Settings
    from customer_service.customers.phones import parse_phone, phone_lookup_hash
    from customer_service.customers.pinyin import name_search_keys

    settings = Settings()
    cipher = FieldCipher(settings.field_encryption_keys)
    bind = op.get_bind()
    after = ""
    while True:
        rows = bind.execute(
            sa.text("SELECT id, name, phone FROM customer WHERE id > :after ORDER BY id LIMIT :n"),
            {"after": after, "n": _BATCH},
        ).all()
        if not rows:
            return
        ids, keys, sealed, hashes, tails = [], [], [], [], []
        for customer_id, name, phone in rows:
            ids.append(customer_id)
            keys.append(name_search_keys(name).text)
            if phone:
                try:
                    kind = parse_phone(phone).kind
                except InvalidField:  # stored before phones were checked: kept, kind unknown
                    kind = "other"
                entry = [{"number": phone, "kind": kind, "primary": True}]
                sealed.append(cipher.encrypt(orjson.dumps(entry).decode()))
                # Arrays of arrays must be rectangular: one hash per file, as text.
                hashes.append(phone_lookup_hash(phone, key=settings.phone_hash_key))
                tails.append(phone[-4:])
            else:
                sealed.append(None)
                hashes.append(None)
                tails.append(None)
        bind.execute(
            sa.text(
                """
                UPDATE customer c SET
                    name_keys = u.keys,
                    phones_encrypted = u.sealed,
                    phone_hashes = CASE WHEN u.hash IS NULL THEN '{}' ELSE ARRAY[u.hash] END,
                    phone_tails = CASE WHEN u.tail IS NULL THEN '{}' ELSE ARRAY[u.tail] END
                FROM unnest(
                    CAST(:ids AS text[]), CAST(:keys AS text[]), CAST(:sealed AS text[]),
                    CAST(:hashes AS text[]), CAST(:tails AS text[])
                ) AS u(id, keys, sealed, hash, tail)
                WHERE c.id = u.id
                """
            ),
            {"ids": ids, "keys": keys, "sealed": sealed, "hashes": hashes, "tails": tails},
        )
        after = ids[-1]


def downgrade() -> None:
    from crm_libs.field_crypto import FieldCipher
    from customer_service.config import Settings

    op.add_column("customer", sa.Column("phone", sa.Text(), nullable=True))
    cipher = FieldCipher(Settings().field_encryption_keys)
    bind = op.get_bind()
    for customer_id, sealed in bind.execute(
        sa.text("SELECT id, phones_encrypted FROM customer WHERE phones_encrypted IS NOT NULL")
    ).all():
        phones = orjson.loads(cipher.decrypt(sealed))
        primary = next((p["number"] for p in phones if p["primary"]), None)
        bind.execute(
            sa.text("UPDATE customer SET phone = :phone WHERE id = :id"),
            {"phone": primary, "id": customer_id},
        )
    op.create_index("ix_customer_store_id_phone", "customer", ["store_id", "phone"])
    for index in (
        "ix_customer_store_referrer",
        "ix_customer_store_owner",
        "ix_customer_store_name_keys",
        "ix_customer_store_phone_hashes",
        "ix_customer_store_phone_tails",
    ):
        op.drop_index(index, table_name="customer")
    for constraint in (
        "ck_customer_not_own_referrer",
        "ck_customer_prospect_grade",
        "ck_customer_prospect_stage",
        "ck_customer_birthday_calendar",
    ):
        op.drop_constraint(constraint, "customer", type_="check")
    for column in (
        "phone_tails",
        "phone_hashes",
        "birthday_calendar",
        "merged_into",
        "phones_encrypted",
        "consents",
        "prospect_grade",
        "prospect_stage",
        "owner_staff_id",
        "referrer_id",
        "source",
        "deep",
        "address",
        "email",
        "wedding_anniversary",
        "approximate_age",
        "ethnicity",
        "name_keys",
    ):
        op.drop_column("customer", column)
