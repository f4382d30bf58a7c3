"""The files of a store having any of a chunk's phones (imports/file_phones.py): every file
having any of them, each once whichever of its phones are asked for, only the store's and only
in the statuses asked for."""

import asyncpg
import pytest

from crm_libs.db import asyncpg_dsn
from crm_libs.ids import new_id
from customer_service.imports import file_phones


def _digest(n: int) -> str:
    return f"{n:064x}"


@pytest.mark.asyncio
async def test_the_stores_files_with_any_of_the_phones_are_found_once(database_url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            stores = [new_id(), new_id()]
            for store_id in stores:
                await conn.execute(
                    "INSERT INTO store (id, code, name, timezone) "
                    "VALUES ($1, $2, 'a store', 'Asia/Shanghai')",
                    store_id,
                    f"code-{store_id}",
                )
            count = 207
            wanted = [_digest(n) for n in range(count)]
            files = [(new_id(), [digest]) for digest in wanted[1:50]]
            # Two phones of one file, both asked for.
            both = (new_id(), [wanted[0], wanted[-1]])
            files.append(both)
            files += [(new_id(), [digest]) for digest in wanted[50:-1]]
            archived = files[5][0]
            elsewhere = (new_id(), [_digest(count + 1), wanted[7]])
            rows = [(i, stores[0], h) for i, h in files] + [(elsewhere[0], stores[1], elsewhere[1])]
            await conn.executemany(
                "INSERT INTO customer (id, store_id, name, phone_hashes) VALUES ($1, $2, 'x', $3)",
                rows,
            )
            await conn.execute("UPDATE customer SET status = 'archived' WHERE id = $1", archived)
            # A file of the store none of whose phones is asked for.
            await conn.execute(
                "INSERT INTO customer (id, store_id, name, phone_hashes) VALUES ($1, $2, 'x', $3)",
                new_id(),
                stores[0],
                [_digest(count + 2)],
            )

            found = await file_phones.files_with_phones(
                conn, store_id=stores[0], digests=wanted, statuses=file_phones.TAKEN
            )
            assert sorted(found) == sorted(files)
            assert [f for f in found if f[0] == both[0]] == [both]

            active = await file_phones.files_with_phones(
                conn, store_id=stores[0], digests=wanted, statuses=file_phones.ACTIVE
            )
            assert sorted(active) == sorted(f for f in files if f[0] != archived)

            assert (
                await file_phones.files_with_phones(
                    conn, store_id=stores[0], digests=[], statuses=file_phones.TAKEN
                )
                == []
            )
            one = await file_phones.files_with_phones(
                conn, store_id=stores[0], digests=[wanted[-1]], statuses=file_phones.TAKEN
            )
            assert one == [both]
    finally:
        await conn.close()
