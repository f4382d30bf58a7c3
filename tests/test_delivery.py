"""At-least-once delivery with exactly-once effects: redelivery, broker outages, poison messages."""

import asyncio
import uuid

import httpx
from aiokafka import AIOKafkaProducer

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import EventEnvelope, Topics
from tests.broker import Records, records_of
from tests.builders import (
    create_customer,
    create_product,
    create_store,
    record_purchase,
    score_of,
    score_with_purchases,
)


async def _produce(stack: LocalStack, topic: str, value: bytes, key: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def _tasks_of(api: httpx.AsyncClient, customer_id: str) -> list[dict]:
    """The customer's follow-up plan tasks (a purchase also brings a refill reminder)."""
    items = (await api.get("/tasks", params={"customer_id": customer_id})).json()["items"]
    return [t for t in items if t["kind"] == "follow_up"]


async def test_redelivered_event_changes_nothing(stack: LocalStack, api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    purchase = await record_purchase(api, customer_id=customer["id"], sku=product["sku"], qty=1)
    score = await score_with_purchases(api, customer["id"], 1)

    # Replay the exact event the customer service published, then a genuine second purchase
    # on the same key (so the same partition, after the replay).
    replayed = await _find_published_event(stack, purchase["id"])
    await _produce(stack, Topics.PURCHASES, replayed.to_bytes(), replayed.key)
    # The same purchase under a new event id must not count twice either.
    renamed = replayed.model_copy(update={"event_id": uuid.uuid4()})
    await _produce(stack, Topics.PURCHASES, renamed.to_bytes(), renamed.key)
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"], qty=1)

    after = await score_with_purchases(api, customer["id"], 2)
    await asyncio.sleep(1)  # give any (wrong) third application time to land
    after = await score_of(api, customer["id"])
    assert after is not None and after["stats"]["purchase_count"] == 2
    assert after["stats"]["net_spend_365d"] == f"{2 * float(score['stats']['net_spend_365d']):.2f}"
    assert len(await _tasks_of(api, customer["id"])) == 5


async def test_purchases_during_a_broker_outage_arrive_after_it(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = await create_store(api)
    product = await create_product(api)
    customers = [await create_customer(api, store_id=store["id"]) for _ in range(3)]
    stack.broker.stop()
    try:
        for customer in customers:
            # The sale is recorded although nothing can be published right now.
            await record_purchase(api, customer_id=customer["id"], sku=product["sku"], qty=1)
        await asyncio.sleep(1)
    finally:
        stack.start_broker()  # a memory broker: it comes back empty, the outbox refills it
    for customer in customers:
        await score_with_purchases(api, customer["id"], 1)
        tasks = await eventually(lambda c=customer: _tasks_of(api, c["id"]), timeout=60)
        assert len(tasks) == 5


async def test_poison_message_goes_to_the_dead_letter_topic(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    marker = uuid.uuid4().hex.encode()
    await _produce(stack, Topics.PURCHASES, b"not json " + marker, b"poison")
    broken = EventEnvelope(
        type="purchase.recorded", store_id="s", customer_id="poison", payload={"lines": "nonsense"}
    )
    await _produce(stack, Topics.PURCHASES, broken.to_bytes(), broken.key)

    def ours(records: Records) -> list[bytes]:
        ids = (marker, str(broken.event_id).encode())
        return [r.value for r in records if any(i in r.value for i in ids)]

    dead_letters = Topics.dead_letter(Topics.PURCHASES)
    dead = ours(await records_of(stack, dead_letters, until=lambda rs: len(ours(rs)) >= 4))
    # Both consumers (scoring, engagement) dead-letter both messages.
    assert sum(1 for v in dead if marker in v) == 2
    assert sum(1 for v in dead if str(broken.event_id).encode() in v) == 2

    # ...and keep consuming.
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    await score_with_purchases(api, customer["id"], 1)


async def _find_published_event(stack: LocalStack, purchase_id: str) -> EventEnvelope:
    needle = purchase_id.encode()
    records = await records_of(
        stack, Topics.PURCHASES, until=lambda rs: any(needle in r.value for r in rs)
    )
    return EventEnvelope.from_bytes(next(r.value for r in records if needle in r.value))
