"""A row that keeps failing is parked with its error; the other rows keep flowing (real
PostgreSQL, the real broker)."""

from __future__ import annotations

import logging
import uuid

import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from crm_devstack.broker import create_topics
from crm_devstack.fixtures import eventually, migrated_database
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.outbox import unpark
from tests.outbox_support import insert_events, new_topic, read_topic, running_relays


def _seqs(records: list) -> list[int]:
    return sorted(orjson.loads(r.value)["seq"] for r in records)


async def test_a_failing_row_is_parked_and_the_others_keep_flowing(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    url = migrated_database(stack, "engagement_service")
    bootstrap = stack.broker.bootstrap
    engine = make_engine(url, pool_size=4)
    sessionmaker = make_sessionmaker(engine)
    topic = await new_topic(bootstrap)
    missing = f"crm.test.missing.{uuid.uuid4().hex[:10]}"
    ids = await insert_events(
        engine,
        [
            (missing, "a", {"seq": 0}),  # a topic the broker does not have
            (topic, "b", {"seq": 1}),
            (topic, "c", {"seq": 2, "blob": "x" * 2_000_000}),  # larger than a request may be
            (topic, "a", {"seq": 3}),  # behind a's failing event until that one is parked
            (topic, "d", {"seq": 4}),
        ],
    )
    parked_before = REGISTRY.get_sample_value("crm_outbox_parked_total", {"topic": missing}) or 0
    caplog.set_level(logging.WARNING, logger="crm_libs.events.relay")
    try:
        async with running_relays(
            sessionmaker,
            url,
            bootstrap,
            max_attempts=3,
            retry_base_seconds=0.3,
            poll_seconds=0.2,
        ) as (relay,):
            # The healthy rows do not wait for the failing ones.
            assert _seqs(await read_topic(bootstrap, topic, expected=2, timeout=20)) == [1, 4]

            async def parked() -> list | None:
                async with engine.connect() as conn:
                    rows = (
                        await conn.execute(
                            text(
                                "SELECT id, attempts, last_error FROM outbox_event"
                                " WHERE parked_at IS NOT NULL ORDER BY id"
                            )
                        )
                    ).all()
                return rows if len(rows) == 2 else None

            rows = await eventually(parked, timeout=30)
            assert [r.id for r in rows] == [ids[0], ids[2]]
            assert all(r.attempts == 3 for r in rows)
            assert missing in rows[0].last_error
            assert "MessageSizeTooLarge" in rows[1].last_error
            # Once a's failing event is parked, a's later one goes out.
            assert _seqs(await read_topic(bootstrap, topic, expected=3, timeout=20)) == [1, 3, 4]

            await relay.update_gauges()
            assert REGISTRY.get_sample_value("crm_outbox_parked_rows") == 2
            assert REGISTRY.get_sample_value("crm_outbox_backlog") == 0
            parked_now = REGISTRY.get_sample_value("crm_outbox_parked_total", {"topic": missing})
            assert parked_now == parked_before + 1
            errors = [
                r
                for r in caplog.records
                if r.levelno == logging.ERROR and "parked" in r.getMessage()
            ]
            assert {(r.fields["topic"], r.fields["outbox_id"]) for r in errors} == {  # type: ignore[attr-defined]
                (missing, ids[0]),
                (topic, ids[2]),
            }
            assert all(r.fields["event_id"] for r in errors)  # type: ignore[attr-defined]

            # The operator fixes the cause (creates the topic) and unparks the row: it goes out.
            await create_topics(bootstrap, [missing], partitions=1)
            async with sessionmaker() as session, session.begin():
                assert await unpark(session, ids=[ids[0]]) == 1
            assert _seqs(await read_topic(bootstrap, missing, expected=1, timeout=20)) == [0]
    finally:
        await engine.dispose()
