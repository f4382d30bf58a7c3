"""Nothing is lost when the memory-backed broker restarts: the relay notices that the broker
lost its data and republishes the published rows it retains; consumers drop what they had."""

from __future__ import annotations

import httpx
import orjson
from sqlalchemy import text

from crm_devstack.broker import EmbeddedBroker, create_topics
from crm_devstack.fixtures import eventually, migrated_database, throwaway_stack
from crm_devstack.stack import LocalStack, free_port
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.envelope import Topics
from tests.builders import (
    create_customer,
    create_product,
    create_store,
    record_purchase,
    score_of,
    score_with_purchases,
)
from tests.outbox_support import insert_events, read_topic, running_relays


async def _admin_api(stack: LocalStack) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=stack.url("gateway") + "/api/v1", timeout=30) as anon:
        response = await anon.post(
            "/auth/token", json={"username": "admin", "password": stack.admin_password}
        )
        response.raise_for_status()
    return httpx.AsyncClient(
        base_url=stack.url("gateway") + "/api/v1",
        headers={"Authorization": f"Bearer {response.json()['access_token']}"},
        timeout=30,
    )


async def _purchase_published(stack: LocalStack, customer_id: str) -> bool:
    engine = make_engine(stack.database_url("customer"), pool_size=1)
    try:
        async with engine.connect() as conn:
            published = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM outbox_event WHERE topic = :topic AND key = :key"
                        " AND published_at IS NOT NULL"
                    ),
                    {"topic": Topics.PURCHASES, "key": customer_id},
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return bool(published)


async def test_a_purchase_scored_after_the_whole_stack_restarted() -> None:
    with throwaway_stack({}) as stack:
        async with await _admin_api(stack) as api:
            store = await create_store(api)
            product = await create_product(api, unit_price="80.00")
            customer = await create_customer(api, store_id=store["id"])
            stack.stop_service("scoring")
            await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
            # The relay handed the purchase to the broker, which will forget it on restart.
            await eventually(lambda: _purchase_published(stack, customer["id"]), timeout=30)

        stack.stop()
        stack.start()

        async with await _admin_api(stack) as api:
            score = await score_with_purchases(api, customer["id"], timeout=90)
            assert score["stats"]["purchase_count"] == 1
            assert score["stats"]["net_spend_365d"] == "80.00"
            # Republished customer and purchase events are not applied twice.
            again = await score_of(api, customer["id"])
            assert again is not None and again["stats"]["purchase_count"] == 1


async def test_a_running_relay_republishes_to_a_broker_that_restarted_empty(
    stack: LocalStack, tmp_path
) -> None:
    url = migrated_database(stack, "scoring_service")
    engine = make_engine(url, pool_size=4)
    broker = EmbeddedBroker(port=free_port(), log_file=tmp_path / "broker.log")
    topic = "crm.test.outbox.restart"
    broker.start()
    try:
        await create_topics(broker.bootstrap, [topic], partitions=2)
        await insert_events(engine, [(topic, f"k{n % 3}", {"seq": n}) for n in range(30)])
        async with running_relays(
            make_sessionmaker(engine),
            url,
            broker.bootstrap,
            poll_seconds=0.2,
            epoch_check_every_seconds=0.5,
        ):
            first = await read_topic(broker.bootstrap, topic, expected=30, timeout=30)
            assert len(first) == 30
            broker.stop()
            broker.start()
            await create_topics(broker.bootstrap, [topic], partitions=2)
            again = await read_topic(broker.bootstrap, topic, expected=30, timeout=60)
            for k in range(3):
                seqs = [orjson.loads(r.value)["seq"] for r in again if r.key == f"k{k}".encode()]
                assert list(dict.fromkeys(seqs)) == list(range(k, 30, 3))
    finally:
        broker.stop()
        await engine.dispose()
