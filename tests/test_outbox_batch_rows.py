"""Batch rows of the outbox (``stage_batch``: many events staged as one row): each event goes out
on its customer's partition in staging order among the single rows, a claim takes whole rows up
to its size in events, a batch row waiting for a retry holds back its customers' later events
only, a batch row committed asynchronously is durable before it is sent, and the way back to a
row per event keeps every event (real PostgreSQL, the real broker)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_devstack.fixtures import eventually, migrate, migrated_database
from crm_devstack.postgres import EmbeddedPostgres
from crm_devstack.stack import LocalStack, free_port
from crm_libs.db import driver_connection, make_engine, make_sessionmaker
from crm_libs.events import relay as relay_module
from crm_libs.events.outbox import (
    BATCH_ROWS_SQL,
    DROP_BATCH_ROWS_SQL,
    DROP_PACKED_ROWS_SQL,
    PACKED_ROWS_SQL,
    stage_batch,
    unpack_envelopes,
    unpack_rows,
)
from crm_libs.events.relay_rows import CLAIM_SQL
from tests.outbox_support import (
    applied_in_order,
    insert_events,
    new_topic,
    read_topic,
    running_relays,
)


async def staged_batch(engine: AsyncEngine, topic: str, events: list[tuple[str, dict]]) -> int:
    """Stage ``(key, envelope)`` events as one batch row; returns its outbox id."""
    async with driver_connection(engine) as conn:
        await stage_batch(
            conn,
            topic=topic,
            events=[
                (e.get("event_id") or str(uuid.uuid4()), key, orjson.dumps(e).decode())
                for key, e in events
            ],
        )
        return int(await conn.fetchval("SELECT max(id) FROM outbox_event"))


async def test_batch_rows_go_out_event_by_event_in_staging_order(stack: LocalStack) -> None:
    url = migrated_database(stack, "customer_service")
    bootstrap = stack.broker.bootstrap
    engine = make_engine(url, pool_size=4)
    topic = await new_topic(bootstrap, partitions=3)
    customers = [f"customer-{n}" for n in range(5)]
    expected: dict[str, list[int]] = {c: [] for c in customers}
    seq = 0

    def events(count: int) -> list[tuple[str, dict[str, Any]]]:
        nonlocal seq
        out = []
        for _ in range(count):
            key = customers[seq % len(customers)]
            out.append((key, {"seq": seq}))
            expected[key].append(seq)
            seq += 1
        return out

    # Single rows, a batch of 30, single rows, a batch of 70 (more than a claim's 50 events:
    # claimed alone), a batch of 20 and single rows: 160 events in 10 + 3 rows.
    published_before = REGISTRY.get_sample_value("crm_outbox_published_total", {"topic": topic})
    assert published_before is None
    try:
        await insert_events(engine, [(topic, k, e) for k, e in events(5)])
        await staged_batch(engine, topic, events(30))
        await insert_events(engine, [(topic, k, e) for k, e in events(5)])
        await staged_batch(engine, topic, events(70))
        await staged_batch(engine, topic, events(20))
        await insert_events(engine, [(topic, k, e) for k, e in events(30)])
        async with running_relays(
            make_sessionmaker(engine), url, bootstrap, batch_size=50, poll_seconds=0.2
        ):
            records = await read_topic(bootstrap, topic, expected=seq, timeout=60)

            async def all_marked() -> bool:
                async with engine.connect() as conn:
                    left = await conn.scalar(
                        text("SELECT count(*) FROM outbox_event WHERE published_at IS NULL")
                    )
                return left == 0

            await eventually(all_marked, timeout=20)
    finally:
        await engine.dispose()

    assert len(records) == seq == 160
    for key in customers:
        assert applied_in_order(records, key) == expected[key], f"{key} out of order"
    assert REGISTRY.get_sample_value("crm_outbox_published_total", {"topic": topic}) == 160


async def test_a_batch_row_waiting_for_a_retry_holds_back_its_customers_only(
    stack: LocalStack,
) -> None:
    url = migrated_database(stack, "engagement_service")
    bootstrap = stack.broker.bootstrap
    engine = make_engine(url, pool_size=4)
    sessionmaker = make_sessionmaker(engine)
    topic = await new_topic(bootstrap)
    missing = f"crm.test.missing.{uuid.uuid4().hex[:10]}"
    try:
        # A batch of a's and b's events on a topic the broker does not have, then a's, b's and
        # c's next events on one it has.
        batch_id = await staged_batch(engine, missing, [("a", {"seq": 0}), ("b", {"seq": 1})])
        await insert_events(
            engine, [(topic, "a", {"seq": 2}), (topic, "c", {"seq": 3}), (topic, "b", {"seq": 4})]
        )
        parked_before = (
            REGISTRY.get_sample_value("crm_outbox_parked_total", {"topic": missing}) or 0
        )
        async with running_relays(
            sessionmaker,
            url,
            bootstrap,
            max_attempts=3,
            retry_base_seconds=0.5,
            poll_seconds=0.2,
        ) as (relay,):
            first = await read_topic(bootstrap, topic, expected=1, timeout=20)
            assert [orjson.loads(r.value)["seq"] for r in first] == [3]
            await relay.update_gauges()
            # The batch row's two events and a's and b's held ones, unless already parked.
            assert REGISTRY.get_sample_value("crm_outbox_backlog") in (2, 4)

            async def parked() -> Any:
                async with engine.connect() as conn:
                    return (
                        await conn.execute(
                            text(
                                "SELECT id, attempts, last_error FROM outbox_event"
                                " WHERE parked_at IS NOT NULL"
                            )
                        )
                    ).one_or_none()

            row = await eventually(parked, timeout=30)
            assert row.id == batch_id and row.attempts == 3 and missing in row.last_error
            # Parked, it holds nothing back: a's and b's later events go out.
            records = await read_topic(bootstrap, topic, expected=3, timeout=20)
            assert sorted(orjson.loads(r.value)["seq"] for r in records) == [2, 3, 4]
            await relay.update_gauges()
            assert REGISTRY.get_sample_value("crm_outbox_parked_rows") == 2
            assert REGISTRY.get_sample_value("crm_outbox_backlog") == 0
            parked_now = REGISTRY.get_sample_value("crm_outbox_parked_total", {"topic": missing})
            assert parked_now == parked_before + 2
    finally:
        await engine.dispose()


async def test_the_way_back_to_a_row_per_event_keeps_every_event(stack: LocalStack) -> None:
    url = migrated_database(stack, "scoring_service")
    engine = make_engine(url, pool_size=2)
    try:
        await insert_events(engine, [("t", "a", {"event_id": "e0", "seq": 0})])
        await staged_batch(
            engine,
            "t",
            [(k, {"event_id": f"e{n}", "seq": n}) for n, k in enumerate("bab", start=1)],
        )
        # Packed, then back to texts (the packed rows' migration's way back), then to a row
        # per event.
        async with driver_connection(engine) as conn:
            packed = await conn.fetchval(
                "SELECT envelopes_packed FROM outbox_event WHERE keys IS NOT NULL"
            )
        assert [orjson.loads(e)["seq"] for e in unpack_envelopes(packed)] == [1, 2, 3]
        async with engine.begin() as sync_conn:
            await sync_conn.run_sync(unpack_rows)
            for statement in DROP_PACKED_ROWS_SQL:
                await sync_conn.execute(text(statement))
        async with driver_connection(engine) as conn:
            async with conn.transaction():
                for statement in DROP_BATCH_ROWS_SQL:
                    await conn.execute(statement)
            rows = await conn.fetch(
                "SELECT event_id, key, envelope->>'seq' AS seq FROM outbox_event ORDER BY id"
            )
            # The single row's event id is the helper's own; the batch's are their envelopes'.
            assert [(r["key"], r["seq"]) for r in rows[:1]] == [("a", "0")]
            assert [(r["event_id"], r["key"], r["seq"]) for r in rows[1:]] == [
                ("e1", "b", "1"),
                ("e2", "a", "2"),
                ("e3", "b", "3"),
            ]
            # And forth again.
            async with conn.transaction():
                for statement in (*BATCH_ROWS_SQL, *PACKED_ROWS_SQL):
                    await conn.execute(statement)
        await staged_batch(engine, "t", [("c", {"seq": 4})])
    finally:
        await engine.dispose()


async def test_a_batch_row_committed_asynchronously_is_durable_before_it_is_sent(
    stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server of its own whose WAL writer flushes every 10 s: the staging commit, without a
    flush of its own, stays in memory until the relay's barrier flushes it."""
    server = EmbeddedPostgres(tmp_path / "postgres", port=free_port())
    engine = None
    try:
        url = await asyncio.to_thread(_migrated, server)
        engine = make_engine(url, pool_size=4)
        topic = await new_topic(stack.broker.bootstrap)
        flushed_at_send: list[bool] = []
        staged: list[str] = []
        real_send_rows = relay_module.send_rows

        async def send_rows(rows: Any, **kwargs: Any) -> Any:
            async with driver_connection(engine) as conn:
                flushed_at_send.append(
                    await conn.fetchval("SELECT pg_current_wal_flush_lsn() >= $1", staged[0])
                )
            return await real_send_rows(rows, **kwargs)

        monkeypatch.setattr(relay_module, "send_rows", send_rows)
        async with driver_connection(engine) as conn:
            await conn.execute("ALTER SYSTEM SET wal_writer_delay = '10s'")
            await conn.execute("SELECT pg_reload_conf()")
        async with running_relays(
            make_sessionmaker(engine), url, stack.broker.bootstrap, poll_seconds=0.2
        ):
            # The relay's first round (its broker marker written, a synchronous commit) done,
            # and the WAL writer asleep with the new setting.
            await asyncio.sleep(2)
            async with driver_connection(engine) as conn:
                async with conn.transaction():
                    await conn.execute("SET LOCAL synchronous_commit = off")
                    await stage_batch(
                        conn,
                        topic=topic,
                        events=[(str(uuid.uuid4()), "a", orjson.dumps({"seq": 0}).decode())],
                    )
                staged.append(await conn.fetchval("SELECT pg_current_wal_insert_lsn()"))
            records = await read_topic(stack.broker.bootstrap, topic, expected=1, timeout=20)
        assert [orjson.loads(r.value)["seq"] for r in records] == [0]
        assert flushed_at_send and all(flushed_at_send)
    finally:
        if engine is not None:
            await engine.dispose()
        server.stop()


def _migrated(server: EmbeddedPostgres) -> str:
    """The server started with a database of the customer service's schema; its URL."""
    server.start()
    server.create_database("outbox")
    url = server.url("outbox")
    migrate(url, "customer_service")
    return url


async def test_a_claim_reads_the_keys_of_the_batch_rows_it_takes_only(stack: LocalStack) -> None:
    """A backlog of 20 batch rows, a claim of one: what it reads out of line is that row's keys
    and envelopes, not every row's keys to count their events."""
    url = migrated_database(stack, "customer_service")
    engine = make_engine(url, pool_size=2)
    try:
        for _ in range(20):
            await staged_batch(engine, "t", [(str(uuid.uuid4()), {"n": 1}) for _ in range(1000)])
        async with driver_connection(engine) as conn:

            async def toast_blocks() -> int:
                await conn.execute("SELECT pg_stat_force_next_flush()")
                return int(
                    await conn.fetchval(
                        "SELECT COALESCE(toast_blks_read, 0) + COALESCE(toast_blks_hit, 0)"
                        " FROM pg_statio_user_tables WHERE relname = 'outbox_event'"
                    )
                )

            before = await toast_blocks()
            claimed = await conn.fetch(CLAIM_SQL, 1000)
            read = await toast_blocks() - before
        assert [len(r["keys"]) for r in claimed] == [1000]
        # The row's 36 kB of keys and its packed envelopes are a few dozen blocks; all 20 rows'
        # keys, several hundred.
        assert read < 100, read
    finally:
        await engine.dispose()
