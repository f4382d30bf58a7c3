"""Noticing a broker that lost its data, so the relay can give it the retained events again.

The embedded broker keeps records and committed offsets in memory and restarts with the same
cluster id, so the id cannot tell a restart apart. Instead each database's relay leaves a
marker record on ``Topics.OUTBOX_EPOCH`` and remembers its offset (``outbox_broker_epoch``); if
the record is no longer at that offset, the broker is not the one the rows were published to.
"""

from __future__ import annotations

import contextlib
import logging
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import Topics

log = logging.getLogger(__name__)

_EPOCH_PARTITION = TopicPartition(Topics.OUTBOX_EPOCH, 0)

_READ_SQL = text("SELECT marker, marker_offset FROM outbox_broker_epoch WHERE id = 1 FOR UPDATE")
_SAVE_SQL = text(
    """
    INSERT INTO outbox_broker_epoch (id, marker, marker_offset, recorded_at)
    VALUES (1, :marker, :offset, now())
    ON CONFLICT (id) DO UPDATE
        SET marker = excluded.marker, marker_offset = excluded.marker_offset, recorded_at = now()
    """
)
# Every retained row goes back to the backlog; the claim's id order republishes them in the
# order they were first sent, and consumers drop what they had already applied (event_id).
_REPUBLISH_SQL = text(
    """
    UPDATE outbox_event SET published_at = NULL, retry_at = NULL
    WHERE published_at IS NOT NULL
    """
)


async def check_broker_epoch(
    session: AsyncSession,
    *,
    bootstrap: str,
    producer: AIOKafkaProducer,
    admin: AIOKafkaAdminClient,
) -> int:
    """Inside the relay leader's transaction: returns how many rows were put back to republish.

    The first check on a database only leaves a marker (nothing was published to a broker we
    could have known about).
    """
    row = (await session.execute(_READ_SQL)).one_or_none()
    if row is not None and await _marker_present(
        bootstrap=bootstrap, admin=admin, marker=row.marker, offset=row.marker_offset
    ):
        return 0
    republished = 0
    if row is not None:
        result = await session.execute(_REPUBLISH_SQL)
        republished = int(result.rowcount)  # type: ignore[attr-defined]
        log.warning(
            "broker lost its data, republishing retained events",
            extra={"fields": {"events": republished, "lost_marker": row.marker}},
        )
    marker = uuid.uuid4().hex
    offset = await _leave_marker(producer=producer, admin=admin, marker=marker)
    await session.execute(_SAVE_SQL, {"marker": marker, "offset": offset})
    return republished


async def _marker_present(
    *, bootstrap: str, admin: AIOKafkaAdminClient, marker: str, offset: int
) -> bool:
    if Topics.OUTBOX_EPOCH not in set(await admin.list_topics()):
        return False
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        consumer.assign([_EPOCH_PARTITION])
        end = (await consumer.end_offsets([_EPOCH_PARTITION]))[_EPOCH_PARTITION]
        if offset >= end:
            return False
        consumer.seek(_EPOCH_PARTITION, offset)
        batches = await consumer.getmany(_EPOCH_PARTITION, timeout_ms=5000, max_records=1)
        records = batches.get(_EPOCH_PARTITION, [])
        if not records:
            # The offset exists but nothing came back in time: a slow broker, not a lost one.
            raise KafkaError("could not read the broker epoch marker")
        return records[0].offset == offset and records[0].key == marker.encode()
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def _leave_marker(
    *, producer: AIOKafkaProducer, admin: AIOKafkaAdminClient, marker: str
) -> int:
    if Topics.OUTBOX_EPOCH not in set(await admin.list_topics()):
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [NewTopic(name=Topics.OUTBOX_EPOCH, num_partitions=1, replication_factor=1)]
            )
    metadata = await producer.send_and_wait(
        Topics.OUTBOX_EPOCH, value=b"", key=marker.encode(), partition=0
    )
    return int(metadata.offset)
