"""Several uvicorn worker processes per service (CRM_WORKERS): both answer, what must happen once
happens once, and a metrics page adds up every worker's figures. One stack, started here."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text

from crm_devstack.fixtures import eventually, migrated_database, throwaway_stack
from crm_devstack.stack import LocalStack
from crm_gateway.config import Settings as GatewaySettings
from crm_gateway.lifespan import _ensure_bootstrap_admin
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.envelope import Topics
from crm_libs.settings import DEV_BOOTSTRAP_ADMIN_PASSWORD
from tests.builders import (
    create_customer,
    create_product,
    create_store,
    record_purchase,
    score_with_purchases,
)
from tests.consumer_groups import stable_members
from tests.test_metrics import scrape, total

pytestmark = pytest.mark.timeout(300)

WORKERS = {"customer": 2, "scoring": 2, "gateway": 2}
HEALTHZ = {"method": "GET", "handler": "/healthz", "status": "200"}


@pytest.fixture(scope="module")
def workers_stack() -> Iterator[LocalStack]:
    with throwaway_stack({}, workers=WORKERS) as local:
        yield local


@pytest.fixture
async def admin_api(workers_stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    base = workers_stack.url("gateway") + "/api/v1"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(
            "/auth/token", json={"username": "admin", "password": workers_stack.admin_password}
        )
        assert response.status_code == 200, response.text
        client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        yield client


def worker_pids(stack: LocalStack, service: str) -> set[int]:
    """The processes uvicorn's master of ``service`` runs as its workers."""
    master = stack.processes[service].pid
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # Not multiprocessing's resource tracker, also a child of the master.
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == master and b"spawn_main" in command:
            pids.add(int(entry.name))
    return pids


def requests_by_worker(stack: LocalStack, service: str, labels: dict[str, str]) -> dict[int, float]:
    """pid -> requests that worker counted, read from its own file in the metrics directory."""
    counts = {}
    for file in stack.metrics_dir(service).glob("counter_*.db"):
        pid = int(file.stem.removeprefix("counter_"))
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(file, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            counts[pid] = registry.get_sample_value("http_requests_total", labels) or 0.0
    return counts


async def test_both_workers_answer_and_the_metrics_page_adds_them_up(
    workers_stack: LocalStack,
) -> None:
    service = workers_stack.url("customer")
    workers = worker_pids(workers_stack, "customer")
    assert len(workers) == 2, workers

    async def one_request() -> None:
        # A connection of its own each time, so the kernel may hand it to either worker.
        async with httpx.AsyncClient(base_url=service, timeout=10) as client:
            assert (await client.get("/healthz")).status_code == 200

    async def both_answered() -> dict[int, float] | None:
        await asyncio.gather(*(one_request() for _ in range(16)))
        counted = requests_by_worker(workers_stack, "customer", HEALTHZ)
        return counted if sum(1 for n in counted.values() if n > 0) == 2 else None

    counted = await eventually(both_answered, timeout=60)
    assert set(counted) == workers  # the counts are those of the two live workers

    async def page_matches() -> bool:
        page = total(await scrape(service + "/metrics"), "http_requests_total", **HEALTHZ)
        return page == sum(requests_by_worker(workers_stack, "customer", HEALTHZ).values())

    assert await eventually(page_matches, timeout=10)


async def test_the_first_administrator_is_created_once_and_the_gateway_keeps_its_workers(
    workers_stack: LocalStack, admin_api: httpx.AsyncClient
) -> None:
    assert len(worker_pids(workers_stack, "gateway")) == 2  # neither died on the other's admin
    engine = make_engine(workers_stack.database_url("gateway"), pool_size=1)
    try:
        async with engine.connect() as connection:
            admins = await connection.scalar(
                text("SELECT count(*) FROM account WHERE username = 'admin'")
            )
    finally:
        await engine.dispose()
    assert admins == 1
    # One worker holds the metrics port; it serves what every worker counted.
    assert (await admin_api.get("/stores")).status_code == 200
    page = await scrape(f"http://127.0.0.1:{workers_stack.ports.gateway_metrics}/metrics")
    assert total(page, "http_requests_total", handler="/api/v1/auth/token", status="200") >= 1


async def test_two_workers_creating_the_first_administrator_at_once_both_start(
    workers_stack: LocalStack,
) -> None:
    url = migrated_database(workers_stack, "crm_gateway")
    settings = GatewaySettings(
        environment="test", database_url=url, bootstrap_admin_password=DEV_BOOTSTRAP_ADMIN_PASSWORD
    )
    engines = [make_engine(url, pool_size=1) for _ in range(2)]
    apps = [FastAPI() for _ in engines]
    for app, engine in zip(apps, engines, strict=True):
        app.state.sessionmaker = make_sessionmaker(engine)
    try:
        # Both look for the account before either has created it, as two starting workers do.
        await asyncio.gather(*(_ensure_bootstrap_admin(app, settings) for app in apps))
        async with engines[0].connect() as connection:
            admins = await connection.scalar(
                text("SELECT count(*) FROM account WHERE username = 'admin'")
            )
    finally:
        for engine in engines:
            await engine.dispose()
    assert admins == 1


async def purchase_messages(bootstrap: str, customer_id: str) -> int:
    """How many purchase events on the topic name ``customer_id`` (each publish is one)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()  # the metadata, for the partitions
        numbers = consumer.partitions_for_topic(Topics.PURCHASES) or set()
        partitions = [TopicPartition(Topics.PURCHASES, p) for p in numbers]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found, needle = 0, customer_id.encode()
        unread = [tp for tp in partitions if ends[tp] > 0]
        while unread:
            batches = await consumer.getmany(*unread, timeout_ms=1000)
            found += sum(needle in r.value for rs in batches.values() for r in rs if r.value)
            unread = [tp for tp in unread if await consumer.position(tp) < ends[tp]]
        return found
    finally:
        await consumer.stop()


async def test_each_purchase_is_published_once_and_scored_once_by_two_group_members(
    workers_stack: LocalStack, admin_api: httpx.AsyncClient
) -> None:
    bootstrap = workers_stack.broker.bootstrap
    # Each scoring worker is a member of the group of its own: the partitions are split.
    assert await eventually(lambda: _members(bootstrap, 2), timeout=60)
    store = await create_store(admin_api)
    product = await create_product(admin_api)
    customer = (await create_customer(admin_api, store_id=store["id"]))["id"]
    for _ in range(3):
        await record_purchase(admin_api, customer_id=customer, sku=product["sku"])

    score = await score_with_purchases(admin_api, customer, count=3)
    assert score["stats"]["purchase_count"] == 3
    # Two relays (one per customer worker), one publisher at a time: no event went out twice.
    assert await purchase_messages(bootstrap, customer) == 3
    await asyncio.sleep(1)  # anything doubled would have been applied by now
    score = await score_with_purchases(admin_api, customer, count=3)
    assert score["stats"]["purchase_count"] == 3


async def _members(bootstrap: str, expected: int) -> bool:
    return await stable_members(bootstrap, "scoring") == expected
