"""Two relays on one database keep each customer's events in outbox order on its partition."""

from __future__ import annotations

from crm_devstack.fixtures import migrated_database
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from tests.outbox_support import (
    applied_in_order,
    insert_events,
    new_topic,
    read_topic,
    running_relays,
)

CUSTOMERS = 6
EVENTS = 600


async def test_two_relays_keep_each_customers_events_in_order(stack: LocalStack) -> None:
    url = migrated_database(stack, "customer_service")
    bootstrap = stack.broker.bootstrap
    engine = make_engine(url, pool_size=6)
    topic = await new_topic(bootstrap, partitions=3)
    # The backlog is there before the relays start, so both race for it in small batches.
    await insert_events(
        engine, [(topic, f"customer-{n % CUSTOMERS}", {"seq": n}) for n in range(EVENTS)]
    )
    try:
        async with running_relays(
            make_sessionmaker(engine), url, bootstrap, count=2, batch_size=10, poll_seconds=0.5
        ):
            records = await read_topic(bootstrap, topic, expected=EVENTS, timeout=90)
    finally:
        await engine.dispose()

    for c in range(CUSTOMERS):
        seen = applied_in_order(records, f"customer-{c}")
        assert seen == list(range(c, EVENTS, CUSTOMERS)), f"customer-{c} out of order"
