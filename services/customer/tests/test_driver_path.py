"""The hot paths on the asyncpg connection under SQLAlchemy's pool (``crm_libs.db``): customer
reads and searches, and sales. What they answer is what the response models document, a sale
is all or nothing, and a pooled connection that broke is dropped instead of handed out again.

The customer service runs in process (its own lifespan, relay included) on a fresh database.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, select
from sqlmodel import col

from crm_devstack.fixtures import migrated_database
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn, driver_connection, driver_sql, make_engine
from crm_libs.pagination import Page
from crm_libs.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from crm_libs.settings import DEV_PRINCIPAL_SECRET
from customer_service.config import Settings
from customer_service.customers.models import Customer
from customer_service.customers.schemas import CustomerPublic
from customer_service.main import create_app
from customer_service.purchases.schemas import PurchasePublic

HQ = Principal(subject="t", role=Role.HQ_ADMIN)


@asynccontextmanager
async def service(stack: LocalStack) -> AsyncIterator[tuple[FastAPI, str]]:
    url = migrated_database(stack, "customer_service")
    app = create_app(
        Settings(database_url=url, kafka_bootstrap=stack.broker.bootstrap, environment="test")
    )
    async with app.router.lifespan_context(app):
        yield app, url


def client(app: FastAPI, principal: Principal = HQ) -> httpx.AsyncClient:
    token = sign_principal(principal, secret=DEV_PRINCIPAL_SECRET)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://customer",
        headers={PRINCIPAL_HEADER: token},
    )


async def created(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def seeded(api: httpx.AsyncClient, code: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A store with a product, and a customer file with every field filled."""
    store = await created(api, "/stores", {"code": code, "name": "x", "timezone": "Asia/Shanghai"})
    await created(
        api,
        "/products",
        {
            "sku": f"{code}-SKU",
            "name": "Fish oil",
            "category": "supplements",
            "unit_price": "12.50",
            "days_per_unit": 30,
        },
    )
    customer = await created(
        api,
        "/customers",
        {
            "store_id": store["id"],
            "name": "王小明",
            "phone": "13812345678",
            "gender": "male",
            "birthday": "1980-02-03",
            "id_number": "11010519491231002X",
            "health_consent": True,
            "health": {"allergies": ["penicillin"], "current_medicines": ["aspirin"]},
        },
    )
    return store, customer


def documented(model: Any, body: Any) -> Any:
    """``body`` as the response model would have written it: validated, then dumped to JSON."""
    return model.model_validate(body).model_dump(mode="json")


async def test_reads_and_searches_answer_exactly_what_the_model_documents(
    stack: LocalStack,
) -> None:
    async with service(stack) as (app, _), client(app) as api:
        store, customer = await seeded(api, "DP1")
        manager = Principal(subject="m", role=Role.STORE_MANAGER, store_id=store["id"])
        staff = Principal(subject="s", role=Role.STAFF, store_id=store["id"])
        for principal in (HQ, manager, staff):
            async with client(app, principal) as caller:
                one = await caller.get(f"/customers/{customer['id']}")
                page = await caller.get("/customers", params={"store_id": store["id"]})
            assert one.status_code == 200 and page.status_code == 200
            assert one.headers["content-type"] == "application/json"
            assert one.json() == documented(CustomerPublic, one.json())
            assert list(one.json()) == list(CustomerPublic.model_fields)
            assert one.headers["etag"] == f'"{customer["version"]}"'
            assert page.json() == documented(Page[CustomerPublic], page.json())
            assert page.json()["items"] == [one.json()]
        # Every field filled, as the manager sees it (health whole, the time a UTC "Z" time).
        async with client(app, manager) as caller:
            shown = (await caller.get(f"/customers/{customer['id']}")).json()
        assert shown["id_number"] == "11010519491231002X"
        assert shown["health"]["allergies"] == ["penicillin"]
        assert shown["birthday"] == "1980-02-03" and shown["created_at"].endswith("Z")


async def test_a_sale_answers_what_the_model_documents_and_its_replay_the_same(
    stack: LocalStack,
) -> None:
    async with service(stack) as (app, _), client(app) as api:
        _, customer = await seeded(api, "DP2")
        body = {
            "purchased_at": datetime.now(UTC).isoformat(),
            "items": [
                {"sku": "DP2-SKU", "qty": 3},
                {"sku": "DP2-SKU", "qty": 1, "unit_price": "9.99"},
            ],
        }
        path = f"/customers/{customer['id']}/purchases"
        first = await api.post(path, json=body, headers={"Idempotency-Key": "k1"})
        again = await api.post(path, json=body, headers={"Idempotency-Key": "k1"})
        unkeyed = await api.post(path, json=body)
        listed = (await api.get(path)).json()["items"]
    assert [first.status_code, again.status_code, unkeyed.status_code] == [201, 201, 201]
    sale = first.json()
    assert sale == documented(PurchasePublic, sale)
    assert again.json() == sale
    assert unkeyed.json()["id"] != sale["id"]
    assert sale["total"] == "47.49"
    assert [i["amount"] for i in sale["items"]] == ["37.50", "9.99"]
    assert sale["purchased_at"].endswith("Z")
    # What was written reads back as what was answered.
    assert {p["id"]: p for p in listed}[sale["id"]] == sale


@pytest.mark.parametrize("key", [None, "k-broken"])
async def test_a_sale_that_fails_half_way_writes_nothing(
    stack: LocalStack, key: str | None
) -> None:
    async with service(stack) as (app, url), client(app) as api:
        _, customer = await seeded(api, "DP3")
        admin = await asyncpg.connect(asyncpg_dsn(url))
        try:
            # The last of the sale's rows cannot be written: the purchase and its lines, written
            # before it in the same statement, must go too.
            await admin.execute(
                """
                CREATE FUNCTION refuse() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION 'outbox refused'; END; $$ LANGUAGE plpgsql;
                CREATE TRIGGER refuse BEFORE INSERT ON outbox_event
                    FOR EACH ROW EXECUTE FUNCTION refuse();
                """
            )
            headers = {"Idempotency-Key": key} if key else {}
            body = {
                "purchased_at": datetime.now(UTC).isoformat(),
                "items": [{"sku": "DP3-SKU", "qty": 2}],
            }
            path = f"/customers/{customer['id']}/purchases"
            failed = await api.post(path, json=body, headers=headers)
            written = await admin.fetchrow(
                """
                SELECT (SELECT count(*) FROM purchase) AS purchases,
                       (SELECT count(*) FROM purchase_line) AS lines,
                       (SELECT count(*) FROM idempotency_record) AS answers
                """
            )
            await admin.execute("DROP TRIGGER refuse ON outbox_event")
            retried = await api.post(path, json=body, headers=headers)
            outbox = await admin.fetchval(
                "SELECT count(*) FROM outbox_event WHERE envelope->>'type' = 'purchase.recorded'"
            )
        finally:
            await admin.close()
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert dict(written) == {"purchases": 0, "lines": 0, "answers": 0}
    # Nothing of the failure was kept: the same key now records the sale, once.
    assert retried.status_code == 201
    assert outbox == 1


async def test_values_the_database_cannot_hold_are_400_on_the_driver_path(
    stack: LocalStack,
) -> None:
    async with service(stack) as (app, _), client(app) as api:
        await seeded(api, "DP4")
        read = await api.get("/customers/a%00b")
        search = await api.get("/customers", params={"store_id": "a\x00b"})
    for response in (read, search):
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_connection_that_breaks_in_use_is_dropped_and_the_next_one_works(
    stack: LocalStack,
) -> None:
    url = migrated_database(stack, "customer_service")
    engine = make_engine(url, pool_size=1)
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        # (asyncpg reports it as a server error, a lost connection or a protocol error,
        # depending on when it notices.)
        with pytest.raises(Exception):  # noqa: B017, PT011
            async with driver_connection(engine) as conn:
                broken = await conn.fetchval("SELECT pg_backend_pid()")
                # The server goes away while the connection is checked out.
                await admin.execute("SELECT pg_terminate_backend($1)", broken)
                await conn.fetchval("SELECT 1")
        assert engine.pool.checkedout() == 0
        async with driver_connection(engine) as conn:
            after = await conn.fetchval("SELECT pg_backend_pid()")
        assert after != broken
    finally:
        await admin.close()
        await engine.dispose()


async def test_a_connection_whose_statement_was_cancelled_is_not_handed_out_again(
    stack: LocalStack,
) -> None:
    """A request cancelled while its statement runs (a timeout, a client gone): the server may
    still be running the statement, so the connection goes, not back to the pool."""
    url = migrated_database(stack, "customer_service")
    engine = make_engine(url, pool_size=1)
    try:

        async def slow() -> None:
            async with driver_connection(engine) as conn:
                await conn.fetchval("SELECT pg_sleep(5)")

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with driver_connection(engine) as conn:
            assert await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=2) == 1
    finally:
        await engine.dispose()


async def test_a_connection_left_in_a_transaction_is_not_handed_out_again(
    stack: LocalStack,
) -> None:
    """A request interrupted inside its transaction (cancelled while its ROLLBACK could not be
    sent) must not give the next request a connection that is still inside it."""
    url = migrated_database(stack, "customer_service")
    engine = make_engine(url, pool_size=1)
    try:
        with pytest.raises(RuntimeError):
            async with driver_connection(engine) as conn:
                abandoned = await conn.fetchval("SELECT pg_backend_pid()")
                await conn.execute("BEGIN")
                await conn.execute("CREATE TEMP TABLE half_done (x int)")
                raise RuntimeError("interrupted")
        async with driver_connection(engine) as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT pg_backend_pid()") != abandoned
            assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        # A clean use gives its connection back as it was: the same one comes out again.
        async with driver_connection(engine) as conn:
            kept = await conn.fetchval("SELECT pg_backend_pid()")
        async with driver_connection(engine) as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") == kept
    finally:
        await engine.dispose()


async def test_reads_recover_after_the_server_closed_the_pooled_connections(
    stack: LocalStack,
) -> None:
    async with service(stack) as (app, url), client(app) as api:
        _, customer = await seeded(api, "DP5")
        path = f"/customers/{customer['id']}"
        await asyncio.gather(*(api.get(path) for _ in range(8)))  # several pooled connections
        admin = await asyncpg.connect(asyncpg_dsn(url))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND query NOT LIKE 'LISTEN%'"
            )
        finally:
            await admin.close()
        assert killed >= 1
        await asyncio.sleep(0.05)  # the event loop sees the sockets close
        responses = await asyncio.gather(*(api.get(path) for _ in range(8)))
    assert [r.status_code for r in responses] == [200] * 8


def test_a_statement_is_compiled_once_per_shape_with_its_values_apart() -> None:
    def by_name(name: str, limit: int) -> Any:
        return (
            select(Customer)
            .where(col(Customer.name).contains(name, autoescape=False))
            .order_by(col(Customer.id))
            .limit(limit)
        )

    first_sql, first_args = driver_sql(by_name("Wang", 10))
    second_sql, second_args = driver_sql(by_name("Li", 20))
    assert first_sql == second_sql
    assert "$1" in first_sql and "Wang" not in first_sql
    assert (first_args, second_args) == (["Wang", 10], ["Li", 20])
    prebuilt = select(Customer).where(col(Customer.id) == bindparam("customer_id"))
    assert driver_sql(prebuilt, {"customer_id": "c1"})[1] == ["c1"]


def test_the_document_still_describes_the_answers_written_by_hand() -> None:
    """The hot routes answer with bytes of their own; their response models stay in OpenAPI."""
    paths = create_app(Settings(environment="test")).openapi()["paths"]

    def schema(path: str, method: str, status: str) -> Any:
        return paths[path][method]["responses"][status]["content"]["application/json"]["schema"]

    assert schema("/customers/{customer_id}", "get", "200")["$ref"].endswith("/CustomerPublic")
    listed = [s["$ref"] for s in schema("/customers", "get", "200")["anyOf"]]
    assert [r.rsplit("/", 1)[-1] for r in listed] == ["Page_CustomerPublic_", "Page_CustomerName_"]
    sale = schema("/customers/{customer_id}/purchases", "post", "201")
    assert sale["$ref"].endswith("/PurchasePublic")
    parameters = paths["/customers/{customer_id}/purchases"]["post"]["parameters"]
    assert "idempotency-key" in {p["name"].lower() for p in parameters}
