"""Dead letters: the headers a consumer writes, and ``crm-dlq`` to inspect and replay them.

    crm-dlq list crm.purchases.v1      # what waits in crm.purchases.v1.dlq, and why
    crm-dlq replay crm.purchases.v1    # send it back into crm.purchases.v1, keyed as before

Replay once the cause is fixed (a handler bug, a missing reference). It reads ``<topic>.dlq``
as a consumer group of its own (``crm-dlq-replay``) and commits that group's offsets only after
the broker acknowledged the re-sent events, so a second replay sends only what was dead-lettered
since. An event that two consumer groups both dead-lettered is sent once per replay; should one
still arrive twice (a crash between send and commit), consumers deduplicate by ``event_id``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic_settings import BaseSettings

from crm_libs.events.envelope import Topics
from crm_libs.events.relay import make_producer
from crm_libs.settings import BaseServiceSettings

ERROR_HEADER = "error"
CONSUMER_HEADER = "consumer"
REPLAYED_FROM_HEADER = "replayed-from"
REPLAY_GROUP = "crm-dlq-replay"


def dead_letter_headers(*, error: str, consumer: str) -> list[tuple[str, bytes]]:
    """The headers a dead letter carries: why it failed and which consumer group gave up."""
    return [(ERROR_HEADER, error[:1000].encode()), (CONSUMER_HEADER, consumer.encode())]


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    error: str
    consumer: str

    @classmethod
    def from_record(cls, record: ConsumerRecord) -> DeadLetter:
        headers = {name: value.decode(errors="replace") for name, value in record.headers or ()}
        return cls(
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            error=headers.get(ERROR_HEADER, ""),
            consumer=headers.get(CONSUMER_HEADER, ""),
        )


class _BrokerSettings(BaseSettings):
    """Only ``CRM_KAFKA_BOOTSTRAP``: the CLI needs none of the services' secrets."""

    model_config = BaseServiceSettings.model_config
    kafka_bootstrap: str = BaseServiceSettings.model_fields["kafka_bootstrap"].default


async def _read_up_to_now(
    consumer: AIOKafkaConsumer, dlq_topic: str, *, from_start: bool, idle_timeout: float
) -> AsyncIterator[dict[TopicPartition, list[ConsumerRecord]]]:
    """Batches of ``dlq_topic`` from the group's committed offsets (or the start) to its end
    offsets as of the call: what is dead-lettered while a replay runs waits for the next one."""
    partitions = consumer.partitions_for_topic(dlq_topic)
    if not partitions:
        await consumer.topics()  # refresh the metadata once: the topic may be new to us
        partitions = consumer.partitions_for_topic(dlq_topic)
    if not partitions:
        raise SystemExit(f"no topic {dlq_topic} on the broker")
    tps = [TopicPartition(dlq_topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    end = await consumer.end_offsets(tps)
    for tp in tps:
        committed = None if from_start else await consumer.committed(tp)
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
    remaining = {tp for tp in tps if await consumer.position(tp) < end[tp]}
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=500)
        wanted = {tp: [r for r in records if r.offset < end[tp]] for tp, records in batches.items()}
        wanted = {tp: records for tp, records in wanted.items() if records}
        if wanted:
            idle_since = loop.time()
            yield wanted
        elif loop.time() - idle_since > idle_timeout:
            raise SystemExit(f"{dlq_topic}: no records arrived for {idle_timeout:.0f}s")
        remaining = {tp for tp in remaining if await consumer.position(tp) < end[tp]}


def _consumer(bootstrap: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def list_dead_letters(
    *, bootstrap: str, topic: str, group: str, everything: bool, limit: int
) -> list[DeadLetter]:
    """The dead letters of ``topic`` not replayed yet (``everything``: all the topic holds)."""
    consumer = _consumer(bootstrap, group)
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        async for batches in _read_up_to_now(
            consumer, Topics.dead_letter(topic), from_start=everything, idle_timeout=30
        ):
            letters.extend(DeadLetter.from_record(r) for rs in batches.values() for r in rs)
    finally:
        await consumer.stop()
    letters.sort(key=lambda d: (d.partition, d.offset))
    print(f"{len(letters)} dead letters in {Topics.dead_letter(topic)}", end="")
    print(" (including those replayed before)" if everything else " waiting for a replay")
    for error, count in Counter(d.error[:160] for d in letters).most_common():
        print(f"{count:>7}  {error}")
    for d in letters[:limit]:
        key = d.key.decode(errors="replace") if d.key else "-"
        print(f"  {d.partition}:{d.offset}  key={key}  consumer={d.consumer}  {d.error[:200]}")
    if len(letters) > limit:
        print(f"  … and {len(letters) - limit} more")
    return letters


async def replay_dead_letters(*, bootstrap: str, topic: str, group: str) -> int:
    """Send what waits in ``<topic>.dlq`` back into ``topic``; return how many were sent."""
    dlq_topic = Topics.dead_letter(topic)
    consumer = _consumer(bootstrap, group)
    producer = make_producer(bootstrap)
    await consumer.start()
    await producer.start()
    sent = duplicates = 0
    seen: set[bytes] = set()
    try:
        async for batches in _read_up_to_now(
            consumer, dlq_topic, from_start=False, idle_timeout=30
        ):
            acks = []
            for records in batches.values():
                for record in records:
                    digest = hashlib.sha256(record.value).digest()
                    if digest in seen:  # the same event dead-lettered by another group
                        duplicates += 1
                        continue
                    seen.add(digest)
                    origin = f"{dlq_topic}/{record.partition}/{record.offset}".encode()
                    acks.append(
                        await producer.send(
                            topic,
                            value=record.value,
                            key=record.key,
                            headers=[(REPLAYED_FROM_HEADER, origin)],
                        )
                    )
            await asyncio.gather(*acks)
            sent += len(acks)
            # Only now: a crash before this line sends the batch again next time, never loses it.
            await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
    finally:
        await producer.stop()
        await consumer.stop()
    print(
        f"replayed {sent} dead letters from {dlq_topic} into {topic}"
        + (f" ({duplicates} copies from other consumer groups skipped)" if duplicates else "")
    )
    return sent


def main(argv: Sequence[str] | None = None) -> None:
    """``crm-dlq``: list or replay a topic's dead letters."""
    parser = argparse.ArgumentParser(
        prog="crm-dlq", description="Inspect and replay a topic's dead letters (<topic>.dlq)."
    )
    parser.add_argument(
        "--bootstrap",
        default=_BrokerSettings().kafka_bootstrap,
        help="Kafka bootstrap servers (default: CRM_KAFKA_BOOTSTRAP, as the services use)",
    )
    parser.add_argument(
        "--group",
        default=REPLAY_GROUP,
        help=f"the consumer group that remembers what was replayed (default: {REPLAY_GROUP})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="count the dead letters and show their errors")
    listing.add_argument("topic", help="the original topic, e.g. crm.purchases.v1")
    listing.add_argument(
        "--all", action="store_true", help="also those already replayed (the whole .dlq topic)"
    )
    listing.add_argument("--limit", type=int, default=50, help="dead letters shown one by one")
    replay = commands.add_parser("replay", help="send the dead letters back into the topic")
    replay.add_argument("topic", help="the original topic, e.g. crm.purchases.v1")
    args = parser.parse_args(argv)
    if args.command == "list":
        asyncio.run(
            list_dead_letters(
                bootstrap=args.bootstrap,
                topic=args.topic,
                group=args.group,
                everything=args.all,
                limit=args.limit,
            )
        )
    else:
        asyncio.run(
            replay_dead_letters(bootstrap=args.bootstrap, topic=args.topic, group=args.group)
        )


if __name__ == "__main__":
    main()
