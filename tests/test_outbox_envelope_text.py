"""The relay sends each staged envelope as the text it was staged as, on the partition Kafka's
default partitioner gives its key, and the outbox still answers queries on the envelope."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import text

from crm_devstack.fixtures import migrated_database
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.envelope import EventEnvelope
from crm_libs.events.outbox import enqueue_many
from tests.outbox_support import new_topic, read_topic, running_relays

PARTITIONS = 5


async def test_envelopes_go_out_as_staged_on_the_default_partition(stack: LocalStack) -> None:
    url = migrated_database(stack, "customer_service")
    bootstrap = stack.broker.bootstrap
    engine = make_engine(url)
    topic = await new_topic(bootstrap, partitions=PARTITIONS)
    events = [
        EventEnvelope(
            type="customer.registered",
            store_id="s-text",
            customer_id=f"customer-{n}-顾客",
            payload={"file": {"name": "张三", "version": 1, "a": [n, None, 1.5]}},
        )
        for n in range(40)
    ]
    sessionmaker = make_sessionmaker(engine)
    try:
        async with sessionmaker() as session, session.begin():
            await enqueue_many(session, topic=topic, events=events)
        async with running_relays(sessionmaker, url, bootstrap, poll_seconds=0.5):
            records = await read_topic(bootstrap, topic, expected=len(events))
        async with engine.connect() as conn:
            registered = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM outbox_event"
                        " WHERE topic = :topic AND envelope->>'type' = 'customer.registered'"
                    ),
                    {"topic": topic},
                )
            ).scalar_one()
    finally:
        await engine.dispose()

    assert registered == len(events)
    sent = {r.key: r for r in records}
    everyone = list(range(PARTITIONS))
    for event in events:
        record = sent[event.key]
        # Byte for byte: stored as jsonb, the text came back reordered and spaced.
        assert record.value == event.to_bytes()
        assert record.partition == DefaultPartitioner()(event.key, everyone, everyone)
