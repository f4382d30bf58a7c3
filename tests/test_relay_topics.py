"""The relay asks the broker for its topics once per claim, after the sends (the guard against a
broker that restarted empty), and before the sends only for a topic it did not list then (the
real broker)."""

from __future__ import annotations

import uuid

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from crm_devstack.stack import LocalStack
from crm_libs.events.relay_rows import ClaimedRow
from crm_libs.events.relay_sends import BrokerTopics, make_producer, send_rows
from tests.outbox_support import new_topic


class CountingAdmin:
    """The real admin client, counting the times it lists the broker's topics."""

    def __init__(self, admin: AIOKafkaAdminClient) -> None:
        self._admin = admin
        self.listed = 0

    async def list_topics(self) -> list[str]:
        self.listed += 1
        return await self._admin.list_topics()


def _rows(topic: str, first_id: int, count: int = 3) -> list[ClaimedRow]:
    return [
        ClaimedRow(
            id=first_id + n,
            event_id=uuid.uuid4().hex,
            topic=topic,
            key=f"customer-{n}",
            envelope=orjson.dumps({"seq": n}).decode(),
        )
        for n in range(count)
    ]


async def test_a_claim_lists_the_topics_once_unless_it_names_a_topic_not_listed_before(
    stack: LocalStack,
) -> None:
    bootstrap = stack.broker.bootstrap
    first = await new_topic(bootstrap)
    producer = make_producer(bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await producer.start()
    await admin.start()
    try:
        counting = CountingAdmin(admin)
        topics = BrokerTopics()
        kwargs = {"producer": producer, "admin": counting, "topics": topics}

        # The first claim: nothing listed yet, so before the sends and after them.
        sent = await send_rows(_rows(first, 1), **kwargs)  # type: ignore[arg-type]
        assert len(sent.sent) == 3 and not sent.failed
        assert counting.listed == 2 and first in topics.listed

        # The same topic again: only the guard after the sends.
        sent = await send_rows(_rows(first, 4), **kwargs)  # type: ignore[arg-type]
        assert len(sent.sent) == 3 and counting.listed == 3

        # A topic created since the last list: asked for before the sends.
        second = await new_topic(bootstrap)
        sent = await send_rows(_rows(second, 7), **kwargs)  # type: ignore[arg-type]
        assert len(sent.sent) == 3 and counting.listed == 5

        # A topic the broker does not have: its rows fail on their own, as before.
        missing = f"crm.test.missing.{uuid.uuid4().hex[:10]}"
        sent = await send_rows(_rows(missing, 10, count=1), **kwargs)  # type: ignore[arg-type]
        assert not sent.sent and list(sent.failed) == [10]
        assert "does not exist on the broker" in sent.failed[10][1]
    finally:
        await producer.stop()
        await admin.close()
