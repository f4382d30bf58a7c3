"""Rebuilding scores from the stored facts gives exactly what the incremental path gave.

A stack of its own with scoring's clock pinned at the last day of the CDNOW log
(``CRM_AS_OF=1998-06-30``, as ``bench/pipeline.py`` runs it). The first few thousand CDNOW
purchases (``bench/cdnow.py``'s mapping: ten stores) are published on ``crm.purchases.v1`` and
applied by the scoring service's own consumer, batch by batch; then every store is recomputed
through ``POST /scores/recompute`` and every column of every score compared with what the
consumer (and the day's ageing) had left; then the tables are emptied and the topic replayed
into a new consumer group, the other documented rebuild, and compared again.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from bench import cdnow
from crm_devstack.fixtures import eventually, throwaway_stack
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn, make_engine, make_sessionmaker
from crm_libs.events.envelope import Topics
from scoring_service.scores import scheduled

ROWS = 3000
AS_OF = date(1998, 6, 30)  # the log's last day
RFM = ("rfm_r", "rfm_f", "rfm_m", "rfm_segment")
# Everything scoring derives from the topics (deploy/README.md's replay empties them all).
DERIVED_TABLES = (
    "customer_score",
    "purchase_fact",
    "merged_customer",
    "customer_signal",
    "customer_link",
    "score_history",
    "rfm_bound",
    "store_ageing",
    "processed_event",
    "outbox_event",
)


@pytest.fixture(scope="module")
def replay_stack() -> Iterator[LocalStack]:
    env = {
        "CRM_RATE_LIMIT": "1000000/minute",
        "CRM_AS_OF": AS_OF.isoformat(),
        # The day's ageing is run by the test, once every purchase is in (see below).
        "CRM_AGEING_CHECK_SECONDS": "86400",
    }
    with throwaway_stack(env) as local:
        yield local


@pytest.fixture
async def scoring_db(replay_stack: LocalStack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(replay_stack.database_url("scoring")))
    try:
        yield conn
    finally:
        await conn.close()


async def publish(bootstrap: str, rows: list[cdnow.CdnowRow]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        events = [cdnow.envelope(r) for r in rows]
        sent = [await producer.send(Topics.PURCHASES, e.to_bytes(), key=e.key) for e in events]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def snapshot(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    """Every column of every CDNOW score."""
    rows = await conn.fetch("SELECT * FROM customer_score WHERE store_id LIKE 'cdnow-store-%'")
    return {r["customer_id"]: dict(r) for r in rows}


def differences(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], *, ignore: tuple = ()
) -> list[str]:
    found = []
    for customer in sorted(set(before) | set(after)):
        was, now = before.get(customer), after.get(customer)
        if was is None or now is None:
            found.append(f"{customer}: only {'after' if was is None else 'before'}")
            continue
        found += [
            f"{customer}.{column}: {was[column]!r} -> {now[column]!r}"
            for column in was
            if column not in ignore and was[column] != now[column]
        ]
    return found


async def test_a_recompute_and_a_replay_give_exactly_the_incremental_scores(
    replay_stack: LocalStack, scoring_db: asyncpg.Connection
) -> None:
    rows = cdnow.load(limit=ROWS)
    await publish(replay_stack.broker.bootstrap, rows)

    async def all_applied() -> bool:
        return await scoring_db.fetchval("SELECT count(*) FROM purchase_fact") == ROWS

    await eventually(all_applied, timeout=120)
    incremental = await snapshot(scoring_db)
    customers = {r.customer_id for r in rows}
    assert set(incremental) == customers
    # The tiers are DOMAIN.md's, computed here independently from the raw rows.
    expected = cdnow.expected_tiers(rows, AS_OF)
    assert {c: s["value_tier"] for c, s in incremental.items()} == {
        c: tier for c, (_, tier) in expected.items()
    }
    assert all(s["lifecycle"] and s["ladder_level"] and s["loyalty"] for s in incremental.values())

    # The day's ageing, as the scheduler runs it at the stores' midnight (this stack checks once
    # a day, at start-up, before any purchase): it computes each store's RFM boundaries afresh
    # and nothing else may change. Between two ageings a batch scores its customers' RFM against
    # the boundaries kept for their store (scores/rfm.py).
    engine = make_engine(replay_stack.database_url("scoring"), pool_size=2)
    try:
        aged = await scheduled.age_as_leader(make_sessionmaker(engine), as_of=AS_OF)
    finally:
        await engine.dispose()
    stores = sorted({r.store_id for r in rows})
    assert aged == dict.fromkeys(stores, 0)
    incremental_aged = await snapshot(scoring_db)
    assert differences(incremental, incremental_aged, ignore=RFM) == []

    base = replay_stack.url("gateway") + "/api/v1"
    async with httpx.AsyncClient(base_url=base, timeout=60) as api:
        token = await api.post(
            "/auth/token", json={"username": "admin", "password": replay_stack.admin_password}
        )
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        for store in stores:
            done = await api.post("/scores/recompute", json={"store_id": store})
            assert done.status_code == 200, done.text
            body = done.json()
            assert body["customers"] == sum(
                1 for s in incremental.values() if s["store_id"] == store
            )
            # Nothing to correct and nothing to publish: the consumer had it all right.
            assert (body["corrected"], body["changed"]) == (0, 0), body
    # Every column of every score: aggregates, supply run-out, window spend, tier, ladder,
    # loyalty, lifecycle, RFM, the day classified, version and time computed.
    recomputed = await snapshot(scoring_db)
    assert differences(incremental_aged, recomputed) == []

    # The other way (deploy/README.md): every scoring table emptied and the topic replayed from
    # its start into a new consumer group. The same scores, apart from their versions and
    # times, which count the publications of another history.
    replay_stack.stop_service("scoring")
    await scoring_db.execute(f"TRUNCATE {', '.join(DERIVED_TABLES)}")
    replay_stack.extra_env["CRM_CONSUMER_GROUP"] = "scoring-rebuild"
    replay_stack.start_service("scoring")
    replay_stack.wait_healthy("scoring")
    await eventually(all_applied, timeout=120)
    engine = make_engine(replay_stack.database_url("scoring"), pool_size=2)
    try:
        await scheduled.age_as_leader(make_sessionmaker(engine), as_of=AS_OF)
    finally:
        await engine.dispose()
    replayed = await snapshot(scoring_db)
    assert differences(recomputed, replayed, ignore=("version", "computed_at")) == []
