"""A campaign's audience follows merges (through the gateway, with the real broker): the
merged-away file's purchases count as the survivor's, so a miss_you campaign reaches the person
once through the survivor when either file was last seen long ago, and not at all when either
was seen lately; a festival reaches the survivor alone. A merge delivered again changes
nothing, and the migration moves the days of files merged before to their survivors."""

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import date
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from crm_devstack.fixtures import eventually, session_on
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import EventEnvelope, Topics
from engagement_service import migrate
from tests.builders import create_customer, create_product, create_store, days_ago, record_purchase
from tests.test_campaigns import campaign, preview_once
from tests.test_care_messages import a_mobile, daytime_zone, template

UNSEEN_DAYS = 30


async def _merge(api: httpx.AsyncClient, survivor: str, duplicate: str) -> None:
    merged = await api.post(f"/customers/{survivor}/merge", json={"duplicate_id": duplicate})
    assert merged.status_code == 200, merged.text


async def _merged_event(stack: LocalStack, duplicate: str) -> EventEnvelope:
    """The ``customer.merged`` the customer service published for ``duplicate``."""
    async with session_on(stack.database_url("customer")) as session:
        envelope = (
            await session.execute(
                text(
                    "SELECT envelope::text FROM outbox_event "
                    "WHERE envelope::jsonb ->> 'type' = 'customer.merged' "
                    "AND envelope::jsonb ->> 'customer_id' = :duplicate"
                ),
                {"duplicate": duplicate},
            )
        ).scalar_one()
    return EventEnvelope.from_bytes(envelope.encode())


async def _produce(stack: LocalStack, event: EventEnvelope) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(Topics.CUSTOMERS, value=event.to_bytes(), key=event.key)
    finally:
        await producer.stop()


def _reached(preview: dict[str, Any]) -> list[str]:
    return sorted(m["customer_id"] for m in preview["messages"]) + sorted(
        e["customer_id"] for e in preview["exclusions"]
    )


async def test_a_campaign_reaches_a_merged_person_once_through_the_survivor(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = await create_store(api, timezone=daytime_zone())
    product = await create_product(api)
    miss = await template(api, store["id"], "miss_you", "{form_of_address}，好久不见")
    holiday = await template(api, store["id"], "holiday", "{form_of_address}，节日快乐")

    async def person(bought_days_ago: int | None) -> str:
        file = await create_customer(api, store_id=store["id"], phone=a_mobile())
        if bought_days_ago is not None:
            await record_purchase(
                api,
                customer_id=file["id"],
                sku=product["sku"],
                purchased_at=days_ago(bought_days_ago),
            )
        return str(file["id"])

    # Missed: the survivor never bought, its duplicate last bought long ago.
    missed, missed_twin = await person(None), await person(UNSEEN_DAYS + 30)
    # Seen lately: the survivor bought long ago, its duplicate a few days ago.
    lately, lately_twin = await person(UNSEEN_DAYS + 30), await person(3)
    # Engagement has seen both purchases before the merges.
    before = await campaign(
        api,
        {
            "kind": "miss_you",
            "template_id": miss,
            "store_id": store["id"],
            "unseen_days": UNSEEN_DAYS,
        },
    )

    async def purchases_seen() -> list[str] | None:
        found = _reached(await preview_once(api, before["id"], 2))
        return found if found == sorted([missed_twin, lately]) else None

    await eventually(purchases_seen)

    await _merge(api, missed, missed_twin)
    await _merge(api, lately, lately_twin)

    festival = await campaign(
        api,
        {
            "kind": "festival",
            "template_id": holiday,
            "store_id": store["id"],
            "occasion": "mid_autumn",
        },
    )
    # Both merges applied: the survivors alone.
    assert _reached(await preview_once(api, festival["id"], 2)) == sorted([missed, lately])

    missing = await campaign(
        api,
        {
            "kind": "miss_you",
            "template_id": miss,
            "store_id": store["id"],
            "unseen_days": UNSEEN_DAYS,
        },
    )
    preview = await preview_once(api, missing["id"], 1)
    assert _reached(preview) == [missed]
    assert preview["would_queue"] == 1 and preview["excluded"] == {}

    # The merges delivered again (the same event, and under a new id) change nothing.
    for duplicate in (missed_twin, lately_twin):
        event = await _merged_event(stack, duplicate)
        await _produce(stack, event)
        await _produce(stack, event.model_copy(update={"event_id": uuid.uuid4()}))
    await asyncio.sleep(2)  # time for a (wrong) second application to land
    assert _reached(await preview_once(api, missing["id"], 1)) == [missed]

    sent = await api.post(f"/campaigns/{missing['id']}/send")
    assert sent.status_code == 202, sent.text

    async def delivered() -> list[dict[str, Any]] | None:
        found = (await api.get(f"/campaigns/{missing['id']}")).json()
        if found["status"] != "sent":
            return None
        return list(
            (await api.get("/messages", params={"campaign_id": missing["id"]})).json()["items"]
        )

    messages = await eventually(delivered, timeout=60)
    assert [m["customer_id"] for m in messages] == [missed]


def _migrate(url: str, revision: str) -> None:
    code = (
        "import sys; from pathlib import Path; from crm_libs.migrations import upgrade;"
        "upgrade(Path(sys.argv[1]) / 'migrations', sys.argv[2], sys.argv[3])"
    )
    folder = os.path.dirname(migrate.__file__)
    subprocess.run(
        [sys.executable, "-c", code, folder, url, revision], check=True, env=dict(os.environ)
    )


async def test_the_days_of_files_merged_before_move_to_their_survivors(stack: LocalStack) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"
    stack.postgres.create_database(name)
    url = stack.postgres.url(name)
    _migrate(url, "0014")
    conn = await asyncpg.connect(stack.postgres.url(name, driver="postgresql"))
    try:
        # b merged into a, then a's day-less file gained e (merged into b: a chain); d merged
        # into c, whose own day is later; f merged with no survivor named stays as it was.
        await conn.execute(
            "INSERT INTO customer_file (customer_id, store_id, status, merged_into, version)"
            " VALUES ('a', 's', 'active', NULL, 1), ('b', 's', 'merged', 'a', 2),"
            " ('e', 's', 'merged', 'b', 2), ('c', 's', 'active', NULL, 1),"
            " ('d', 's', 'merged', 'c', 2), ('f', 's', 'merged', NULL, 2),"
            " ('g', 's', 'active', NULL, 1)"
        )
        await conn.execute(
            "INSERT INTO customer_seen (customer_id, store_id, last_purchase_on) VALUES"
            " ('b', 's', '2026-01-01'), ('e', 's', '2026-04-01'), ('c', 's', '2026-03-01'),"
            " ('d', 's', '2026-02-01'), ('f', 's', '2026-05-01'), ('g', 's', '2026-06-01')"
        )
        _migrate(url, "0015")
        seen = {
            r["customer_id"]: r["last_purchase_on"]
            for r in await conn.fetch("SELECT customer_id, last_purchase_on FROM customer_seen")
        }
    finally:
        await conn.close()
    assert seen == {
        "a": date(2026, 4, 1),
        "c": date(2026, 3, 1),
        "f": date(2026, 5, 1),
        "g": date(2026, 6, 1),
    }
