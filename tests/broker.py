"""The stack's broker as the tests use it: events published onto a topic as a service's relay
would, and a topic's records read back from its start."""

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import EventEnvelope

Records = list[ConsumerRecord[bytes, bytes]]


async def publish(stack: LocalStack, topic: str, *events: EventEnvelope) -> None:
    """``events`` on ``topic`` in this order, each keyed as its envelope says."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic, value=event.to_bytes(), key=event.key)
    finally:
        await producer.stop()


async def records_of(
    stack: LocalStack,
    topic: str,
    *,
    key: str | None = None,
    until: Callable[[Records], bool] | None = None,
    timeout: float = 60,
    seconds: float = 3,
) -> Records:
    """The records of ``topic`` from its start, only those keyed ``key`` where one is named:
    once ``until`` holds of them (it fails after ``timeout`` seconds), or without ``until``
    what ``seconds`` of reading find (to show something was not published)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.broker.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: Records = []

    async def read() -> None:
        for batch in (await consumer.getmany(timeout_ms=500)).values():
            found.extend(r for r in batch if key is None or r.key == key.encode())

    try:
        if until is None:
            for _ in range(round(seconds / 0.5)):
                await read()
        else:

            async def done() -> bool:
                await read()
                return until(found)

            await eventually(done, timeout=timeout)
    finally:
        await consumer.stop()
    return found


def at_least(count: int) -> Callable[[Records], bool]:
    """``until`` for ``count`` records or more."""
    return lambda records: len(records) >= count
