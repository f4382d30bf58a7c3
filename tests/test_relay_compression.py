"""The relay's record batches reach the broker zstd-compressed, and a consumer reads the events
back as they were staged."""

from __future__ import annotations

import uuid

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.record.memory_records import MemoryRecords

from crm_devstack.stack import LocalStack
from crm_libs.events.relay_rows import ClaimedRow
from crm_libs.events.relay_sends import make_producer, send_rows
from tests.outbox_support import new_topic

EVENTS = 200


def _batch_row(topic: str) -> ClaimedRow:
    keys = [f"customer-{n:04d}" for n in range(EVENTS)]
    envelopes = [
        orjson.dumps({"event_id": uuid.uuid4().hex, "customer_id": k, "seq": n}).decode()
        for n, k in enumerate(keys)
    ]
    return ClaimedRow(
        id=1,
        event_id=uuid.uuid4().hex,
        topic=topic,
        key=keys[0],
        envelope=None,
        keys=keys,
        envelopes=envelopes,
    )


async def test_the_relays_batches_are_zstd_and_read_back_as_staged(stack: LocalStack) -> None:
    bootstrap = stack.broker.bootstrap
    topic = await new_topic(bootstrap, partitions=1)
    row = _batch_row(topic)
    producer = make_producer(bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await producer.start()
    await admin.start()
    try:
        outcome = await send_rows([row], producer=producer, admin=admin)
        assert [r.id for r in outcome.sent] == [1] and not outcome.failed

        # The partition's batches as the broker holds them.
        leader = producer.client.cluster.leader_for_partition(TopicPartition(topic, 0))
        request = FetchRequest(100, 1, 8 << 20, 0, [(topic, [(0, 0, 8 << 20)])])
        response = await producer.client.send(leader, request)
        stored = response.topics[0][1][0][-1]
        records = MemoryRecords(stored)
        codecs = []
        while (batch := records.next_batch()) is not None:
            codecs.append(batch.compression_type)
        assert codecs and set(codecs) == {DefaultRecordBatch.CODEC_ZSTD}
        staged = sum(len(e) for e in row.envelopes or [])
        assert len(stored) * 4 < staged * 3  # compressed, not merely flagged
    finally:
        await producer.stop()
        await admin.close()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        read: list[tuple[str, str]] = []
        while len(read) < EVENTS:
            batches = await consumer.getmany(timeout_ms=2000)
            assert batches, f"only {len(read)} of {EVENTS} events came back"
            for records_of in batches.values():
                read += [(r.key.decode(), r.value.decode()) for r in records_of]
    finally:
        await consumer.stop()
    assert read == row.messages()
