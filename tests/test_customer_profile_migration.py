"""The profile's migration moves plaintext phones into their encrypted form (with lookup hash and
tail), keys every name and sets each file's prospect stage."""

import os
import subprocess
import sys
import uuid

import asyncpg
import orjson

from crm_devstack.stack import LocalStack
from crm_libs.field_crypto import FieldCipher
from customer_service.config import Settings
from customer_service.customers.phones import phone_lookup_hash


def _migrate(url: str, *args: str) -> None:
    code = (
        "import sys; from pathlib import Path; import customer_service.migrate as m;"
        "from crm_libs.migrations import upgrade;"
        "upgrade(Path(m.__file__).parent / 'migrations', sys.argv[1], sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, url, *args], check=True, env=dict(os.environ))


async def test_plaintext_phones_are_encrypted_hashed_and_dropped(stack: LocalStack) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"
    stack.postgres.create_database(name)
    url = stack.postgres.url(name)
    _migrate(url, "0005")
    conn = await asyncpg.connect(stack.postgres.url(name, driver="postgresql"))
    try:
        await conn.execute(
            "INSERT INTO store (id, code, name, timezone) VALUES ('s', 'S', 'S', 'Asia/Shanghai')"
        )
        await conn.execute(
            "INSERT INTO customer (id, store_id, name, phone) VALUES"
            " ('a', 's', '曾国藩', '+8613812345678'), ('b', 's', '王芳', NULL),"
            " ('c', 's', '李四', '+861062345678')"
        )
        await conn.execute(
            "INSERT INTO purchase (id, store_id, customer_id, purchased_at, total)"
            " VALUES ('p', 's', 'c', now(), 1)"
        )
        _migrate(url, "0006")
        rows = {r["id"]: r for r in await conn.fetch("SELECT * FROM customer ORDER BY id")}
        columns = [
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'customer'"
            )
        ]
    finally:
        await conn.close()
    assert "phone" not in columns
    settings = Settings()
    cipher = FieldCipher(settings.field_encryption_keys)
    a, b, c = rows["a"], rows["b"], rows["c"]
    assert orjson.loads(cipher.decrypt(a["phones_encrypted"])) == [
        {"number": "+8613812345678", "kind": "mobile", "primary": True}
    ]
    assert a["phone_hashes"] == [phone_lookup_hash("+8613812345678", key=settings.phone_hash_key)]
    assert a["phone_tails"] == ["5678"]
    assert orjson.loads(cipher.decrypt(c["phones_encrypted"]))[0]["kind"] == "landline"
    assert (b["phones_encrypted"], b["phone_hashes"], b["phone_tails"]) == (None, [], [])
    assert a["name_keys"].startswith("zengguofan")
    assert [rows[i]["prospect_stage"] for i in "abc"] == ["collected", "collected", "bought"]
