"""The consumer's partitions: rewound and paused for a retry, and their lag reported."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from crm_libs.events.consumer_metrics import CONSUMER_LAG, TRANSIENT_RETRIES

# The consumer's logger: its records keep the name operators filter on.
log = logging.getLogger("crm_libs.events.consumer")


async def wait_to_retry(
    consumer: AIOKafkaConsumer,
    behind: Sequence[dict[TopicPartition, list[ConsumerRecord]]],
    *,
    name: str,
    error: Exception,
    delay: float,
) -> None:
    """Rewind to the first offsets of the failed batch (and of the one fetched behind it)
    and pause those partitions for ``delay``.

    Nothing is committed, so a crash or a rebalance meanwhile replays the same events. The
    member stays in the group: aiokafka heartbeats in the background, and ``getmany`` is
    called again after at most the capped delay, well inside ``max_poll_interval_ms``.
    """
    first_offsets: dict[TopicPartition, int] = {}
    for batches in behind:  # the failed batch first: its offsets are the earlier ones
        for tp, records in batches.items():
            first_offsets.setdefault(tp, records[0].offset)
    assigned = consumer.assignment()
    partitions = [tp for tp in first_offsets if tp in assigned]  # a rebalance may take some
    for tp in partitions:
        consumer.seek(tp, first_offsets[tp])
        TRANSIENT_RETRIES.labels(name, tp.topic, str(tp.partition)).inc()
    log.warning(
        "transient failure, retrying the batch",
        extra={
            "fields": {
                "consumer": name,
                "error": repr(error),
                "retry_in_s": delay,
                "events": sum(len(records) for records in behind[0].values()),
                "partitions": len(partitions),
            }
        },
    )
    consumer.pause(*partitions)
    try:
        await asyncio.sleep(delay)
    finally:
        still_assigned = consumer.assignment()
        consumer.resume(*(tp for tp in partitions if tp in still_assigned))


async def report_lag(
    consumer: AIOKafkaConsumer, *, name: str, reported: set[TopicPartition]
) -> None:
    """Set the lag of each partition assigned; drop the figures of those no longer ours."""
    assigned = consumer.assignment()
    for tp in assigned:
        highwater = consumer.highwater(tp)
        if highwater is None:  # nothing fetched from it yet
            continue
        lag = max(highwater - await consumer.position(tp), 0)
        CONSUMER_LAG.labels(name, tp.topic, str(tp.partition)).set(lag)
        reported.add(tp)
    # A partition handed to another member is that member's to report.
    for tp in reported - assigned:
        with contextlib.suppress(KeyError):
            CONSUMER_LAG.remove(name, tp.topic, str(tp.partition))
    reported &= assigned
