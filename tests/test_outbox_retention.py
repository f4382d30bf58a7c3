"""Published outbox rows are kept for the retention period, then purged; the backlog stays."""

from __future__ import annotations

from sqlalchemy import text

from crm_devstack.fixtures import eventually, migrated_database
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from tests.outbox_support import insert_events, new_topic, running_relays


async def test_published_rows_are_kept_for_the_retention_period_then_purged(
    stack: LocalStack,
) -> None:
    url = migrated_database(stack, "customer_service")
    bootstrap = stack.broker.bootstrap
    engine = make_engine(url, pool_size=4)
    topic = await new_topic(bootstrap)
    old, recent, waiting = await insert_events(
        engine, [(topic, "a", {"seq": 0}), (topic, "b", {"seq": 1}), (topic, "c", {"seq": 2})]
    )
    async with engine.begin() as conn:
        # Published 8 and 6 days ago (relative to the database's clock); one still to send.
        await conn.execute(
            text(
                "UPDATE outbox_event SET published_at = now() - make_interval(days => :d)"
                " WHERE id = :id"
            ),
            [{"id": old, "d": 8}, {"id": recent, "d": 6}],
        )

    async def ids() -> list[int]:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT id FROM outbox_event ORDER BY id"))
            return [r.id for r in rows]

    try:
        async with running_relays(
            make_sessionmaker(engine),
            url,
            bootstrap,
            poll_seconds=0.2,
            retention_seconds=7 * 86400,
        ):

            async def purged_and_sent() -> bool:
                async with engine.connect() as conn:
                    sent = (
                        await conn.execute(
                            text(
                                "SELECT published_at IS NOT NULL FROM outbox_event WHERE id = :id"
                            ),
                            {"id": waiting},
                        )
                    ).scalar_one()
                return sent and (await ids()) == [recent, waiting]

            await eventually(purged_and_sent, timeout=30)
    finally:
        await engine.dispose()
