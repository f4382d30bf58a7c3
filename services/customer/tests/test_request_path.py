"""What a request costs the database: reads without a transaction, no ping per checkout, a pool
that does not churn, and a pooled connection the server closed replaced without an error.

The customer service runs in process (its own lifespan, relay included) on a fresh database of
the test server; every statement its engine sends is seen through asyncpg's query logger.
"""

import asyncio
import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy import event, text

from crm_devstack.fixtures import migrated_database
from crm_devstack.stack import LocalStack
from crm_devstack.statement_log import StatementLog
from crm_libs.db import asyncpg_dsn, make_engine
from crm_libs.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from crm_libs.settings import DEV_PRINCIPAL_SECRET
from customer_service.config import Settings
from customer_service.main import create_app


@asynccontextmanager
async def service(stack: LocalStack, **settings: Any) -> AsyncIterator[tuple[FastAPI, str]]:
    url = migrated_database(stack, "customer_service")
    app = create_app(
        Settings(
            database_url=url,
            kafka_bootstrap=stack.broker.bootstrap,
            environment="test",
            **settings,
        )
    )
    async with app.router.lifespan_context(app):
        yield app, url


def client(app: FastAPI) -> httpx.AsyncClient:
    token = sign_principal(Principal(subject="t", role=Role.HQ_ADMIN), secret=DEV_PRINCIPAL_SECRET)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://customer",
        headers={PRINCIPAL_HEADER: token},
    )


async def test_a_read_sends_its_query_and_nothing_else(stack: LocalStack) -> None:
    async with service(stack) as (app, _), client(app) as api:
        store = (await api.post("/stores", json={"code": "RP1", "name": "x"})).json()
        log = StatementLog(app)
        response = await api.get(f"/stores/{store['id']}")
        assert response.status_code == 200
        sent = await log.around("FROM store WHERE store.id =")
    # Neither a liveness ping nor BEGIN ... COMMIT around the one SELECT.
    assert len(sent) == 1, sent
    assert sent[0].startswith("SELECT")


async def test_a_customer_read_sends_its_select_and_nothing_else(stack: LocalStack) -> None:
    async with service(stack) as (app, _), client(app) as api:
        store = (await api.post("/stores", json={"code": "RP7", "name": "x"})).json()
        customer = (
            await api.post("/customers", json={"store_id": store["id"], "name": "y"})
        ).json()
        log = StatementLog(app)
        response = await api.get(f"/customers/{customer['id']}")
        assert response.status_code == 200
        sent = await log.around("FROM customer WHERE customer.id =")
    assert len(sent) == 1, sent
    assert sent[0].startswith("SELECT")


async def test_a_sale_is_two_reads_and_one_write_each_committing_by_itself(
    stack: LocalStack,
) -> None:
    """Without an Idempotency-Key a sale needs no transaction of its own: the purchase, its lines
    and its outbox row go in one statement, atomic by itself. With a key, one transaction holds
    the key's lock, the lookup, the sale and the stored answer."""
    # One pooled connection, warmed by a first sale: asyncpg looks the array types up once per
    # connection, which is not what a sale costs.
    async with service(stack, database_pool_size=1) as (app, _), client(app) as api:
        store = (await api.post("/stores", json={"code": "RP8", "name": "x"})).json()
        product = {"sku": "RP8", "name": "x", "category": "c", "unit_price": "1.00"}
        assert (
            await api.post("/products", json={**product, "days_per_unit": 30})
        ).status_code == 201
        customer = (
            await api.post("/customers", json={"store_id": store["id"], "name": "y"})
        ).json()
        sale = {"purchased_at": "2026-01-02T10:00:00+08:00", "items": [{"sku": "RP8", "qty": 2}]}
        path = f"/customers/{customer['id']}/purchases"
        assert (await api.post(path, json=sale)).status_code == 201
        log = StatementLog(app)
        assert (await api.post(path, json=sale)).status_code == 201
        unkeyed = await log.around("INSERT INTO purchase ")
        log = StatementLog(app)
        keyed = await api.post(path, json=sale, headers={"Idempotency-Key": "rp8"})
        assert keyed.status_code == 201
        with_key = await log.around("INSERT INTO idempotency_record")
    assert [s.split()[0] for s in unkeyed] == ["SELECT", "SELECT", "WITH"], unkeyed
    assert [s.split()[0].rstrip(";") for s in with_key] == [
        "BEGIN",
        "SELECT",  # the key's lock
        "SELECT",  # its stored answer
        "SELECT",
        "SELECT",
        "WITH",
        "INSERT",
        "COMMIT",
    ], with_key


async def test_a_write_still_commits_in_one_transaction(stack: LocalStack) -> None:
    async with service(stack) as (app, _), client(app) as api:
        log = StatementLog(app)
        response = await api.post("/stores", json={"code": "RP2", "name": "x"})
        assert response.status_code == 201
        sent = await log.around("INSERT INTO store")
    # (SQLAlchemy's statements are seen before the BEGIN the driver sends ahead of them.)
    transaction = [s.split()[0].rstrip(";") for s in sent if s.startswith(("BEGIN", "COMMIT"))]
    assert transaction == ["BEGIN", "COMMIT"], sent
    assert not any(s in (";", "SELECT 1") for s in sent), sent  # no ping


async def test_concurrent_requests_beyond_the_pool_wait_instead_of_opening_connections(
    stack: LocalStack,
) -> None:
    async with service(stack, database_pool_size=3) as (app, _), client(app) as api:
        store = (await api.post("/stores", json={"code": "RP3", "name": "x"})).json()
        pool = app.state.engine.pool
        log = StatementLog(app)
        already_open = pool.checkedin() + pool.checkedout()
        for _ in range(2):
            responses = await asyncio.gather(
                *(api.get(f"/stores/{store['id']}") for _ in range(40))
            )
            assert {r.status_code for r in responses} == {200}
            assert already_open + log.connects <= 3
        # Overflow connections would be closed on return and opened again by the next burst.
        assert pool.checkedin() + pool.checkedout() == already_open + log.connects


async def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error(
    stack: LocalStack,
) -> None:
    async with service(stack) as (app, url), client(app) as api:
        store = (await api.post("/stores", json={"code": "RP4", "name": "x"})).json()
        assert (await api.get(f"/stores/{store['id']}")).status_code == 200
        admin = await asyncpg.connect(asyncpg_dsn(url))
        try:
            # What a restart or an idle-connection timeout does to the pooled connections (the
            # relay's LISTEN connection is left alone: its failure would clear the pool first).
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND query NOT LIKE 'LISTEN%'"
            )
        finally:
            await admin.close()
        assert killed >= 1
        await asyncio.sleep(0.05)  # the event loop sees the sockets close
        responses = [await api.get(f"/stores/{store['id']}") for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 200]
        written = await api.post("/stores", json={"code": "RP5", "name": "y"})
        assert written.status_code == 201


async def test_the_engine_replaces_a_connection_closed_while_pooled(stack: LocalStack) -> None:
    # The engine alone: in the service the relay's next poll may meet the dead connection first
    # and clear the pool, which would hide whether a request could have.
    url = migrated_database(stack, "customer_service")
    engine = make_engine(url, pool_size=1)
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with engine.connect() as conn:
            before = await conn.scalar(text("SELECT pg_backend_pid()"))
        await admin.execute("SELECT pg_terminate_backend($1)", before)
        await asyncio.sleep(0.05)  # the event loop sees the socket close
        async with engine.connect() as conn:
            after = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert after != before
    finally:
        await admin.close()
        await engine.dispose()


async def test_requests_get_connections_in_the_order_they_came(stack: LocalStack) -> None:
    """Above the pool size, a request is not overtaken by many that came after it (the pool's
    own wait lets a newcomer take a returned connection and sends the waiting to the back)."""
    arrival: contextvars.ContextVar[int] = contextvars.ContextVar("arrival", default=-1)
    arrived: list[int] = []
    served: list[int] = []
    async with service(stack, database_pool_size=2) as (app, _), client(app) as api:
        store = (await api.post("/stores", json={"code": "RP6", "name": "x"})).json()
        event.listen(
            app.state.engine.sync_engine.pool, "checkout", lambda *_: served.append(arrival.get())
        )

        async def one() -> int:
            arrival.set(len(arrived))
            arrived.append(len(arrived))
            return (await api.get(f"/stores/{store['id']}")).status_code

        async def client_loop() -> list[int]:
            return [await one() for _ in range(15)]

        results = await asyncio.gather(*(client_loop() for _ in range(12)))
    assert {s for r in results for s in r} == {200}
    requests = [n for n in served if n >= 0]  # not the relay's
    assert sorted(requests) == arrived
    overtaken = [sum(1 for later in requests[: requests.index(n)] if later > n) for n in arrived]
    assert max(overtaken) <= 2, overtaken
