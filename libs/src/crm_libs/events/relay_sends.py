"""The relay's sends: its producer, and a claim's rows sent in record batches per partition."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from crm_libs.events.partitions import partitions_of
from crm_libs.events.relay_rows import ClaimedRow

# Rows put in record batches between two yields to the event loop: a consumer in the same
# process then sends its next statement without waiting for the whole claim to be batched.
_YIELD_EVERY = 250
# Records larger than this go out on their own (a quarter of the producer's batch size): one
# that is too large for any request then fails alone, with aiokafka's own error.
_ALONE_ABOVE_BYTES = 64 * 1024


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    """A plain acks=all producer: the embedded broker has no idempotent producer, and consumers
    deduplicate by event_id anyway.

    Record batches go zstd-compressed: a batch of customer events (JSON envelopes repeating
    their keys, store and time zone) shrinks about sixfold, and every byte sent is copied by
    the broker into freshly allocated memory on its way in and again on each fetch (the
    embedded broker spent about half its CPU faulting those pages in: 1.7-1.9 cpu-s over a
    100,000-row import, 0.7-0.8 compressed). Not LZ4: aiokafka compresses LZ4 at level 9, its
    high-compression mode, which took 147 µs for a batch of 83 registrations against 64 for
    zstd at the level Kafka's brokers use (3), whose batch is 40 % smaller too; decompressing
    costs each consumer 16 µs more, less than the relay saves. Kafka brokers and clients read
    zstd since Kafka 2.1."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        request_timeout_ms=10_000,
        max_batch_size=256 * 1024,
        compression_type="zstd",
    )


def broker_trouble(exc: BaseException) -> bool:
    """An error of the broker or the way to it (retry everything later), not of one row."""
    if isinstance(exc, KafkaError):
        return bool(exc.retriable)
    return isinstance(exc, (TimeoutError, OSError))


@dataclass
class SendOutcome:
    """What became of a claim's rows: sent, failed on their own, or the broker in trouble."""

    sent: list[Any] = field(default_factory=list)
    failed: dict[int, tuple[Any, str]] = field(default_factory=dict)
    trouble: BaseException | None = None


@dataclass
class BrokerTopics:
    """The topics the broker listed when last asked: after each send (the guard, see
    ``confirm``), and before a claim's sends only for a topic it did not list then."""

    listed: frozenset[str] = frozenset()

    async def before_sending(self, admin: AIOKafkaAdminClient, topics: set[str]) -> frozenset[str]:
        """The topics to send to, asking the broker again unless it listed all of ``topics``
        at the last check (a topic it lost since is caught by the check after these sends)."""
        if not topics <= self.listed:
            self.listed = frozenset(await admin.list_topics())
        return self.listed

    async def confirm(self, admin: AIOKafkaAdminClient, topics: set[str]) -> None:
        """Refuse to count a send whose topic the broker does not list.

        A broker that restarted empty (the embedded, memory-backed one) can acknowledge
        records for a topic that does not exist yet and then lose them when the topic is
        created: such a batch stays unpublished and is sent again once the topic is there.
        """
        self.listed = frozenset(await admin.list_topics())
        missing = topics - self.listed
        if missing:
            raise KafkaError(f"topics not on the broker yet: {sorted(missing)}")


async def send_rows(
    rows: Sequence[ClaimedRow],
    *,
    producer: AIOKafkaProducer,
    admin: AIOKafkaAdminClient,
    topics: BrokerTopics | None = None,
) -> SendOutcome:
    """Send rows in id order, each customer's stopping at its first failing row.

    Rows go out in one record batch per partition (aiokafka's ``send_batch``): a send per
    row cost more Python than everything else the relay does with it. The partition is
    the one Kafka's default partitioner gives the key, as for any other producer
    (:mod:`crm_libs.events.partitions`). A row too large for a batch is sent on its own, so
    aiokafka refuses it alone; a batch the broker refuses fails each of its rows.

    A batch row's events go out as any row's, each on its customer's partition; the row is
    sent when all of them were, and fails (all of them sent again later: consumers drop what
    they applied) when any failed."""
    topics = topics or BrokerTopics()
    known = await topics.before_sending(admin, {row.topic for row in rows})
    batch = SendOutcome()
    held: set[str] = set()  # customers whose earlier event failed in this batch
    partitions: dict[str, list[int]] = {}
    filling: dict[tuple[str, int], tuple[Any, list[Any]]] = {}  # (builder, its rows)
    pending: list[tuple[list[Any], asyncio.Future[Any]]] = []
    sending: list[ClaimedRow] = []  # rows with every event handed to the producer

    async def submit(tp: tuple[str, int]) -> None:
        builder, members = filling.pop(tp)
        pending.append((members, await producer.send_batch(builder, tp[0], partition=tp[1])))

    def fail(row: ClaimedRow, error: str) -> None:
        batch.failed[row.id] = (row, error)
        held.update(row.keys if row.keys is not None else (row.key,))

    n = 0
    for row in rows:
        if row.key in held or (row.keys is not None and not held.isdisjoint(row.keys)):
            continue  # stays in the backlog, behind the failed one
        if row.topic not in known:
            fail(row, f"topic {row.topic!r} does not exist on the broker")
            continue
        if row.topic not in partitions:
            partitions[row.topic] = sorted(await producer.partitions_for(row.topic))
        messages = row.messages()
        keys = [text_key.encode() for text_key, _ in messages]
        # A batch row's keys hashed together (partitions.py).
        chosen = partitions_of(keys, partitions[row.topic])
        for key, (_, text), partition in zip(keys, messages, chosen, strict=True):
            n += 1
            if n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a consumer's transaction in this process goes on
            value = text.encode()
            tp = (row.topic, partition)
            if len(key) + len(value) > _ALONE_ABOVE_BYTES:
                if tp in filling:
                    await submit(tp)  # the rows before it first
                try:
                    future = await producer.send(row.topic, value=value, key=key, partition=tp[1])
                except Exception as exc:
                    if broker_trouble(exc):
                        raise
                    fail(row, repr(exc))
                    break
                pending.append(([row], future))
                continue
            if tp not in filling:
                filling[tp] = (producer.create_batch(), [])
            if filling[tp][0].append(key=key, value=value, timestamp=None) is None:  # full
                await submit(tp)
                filling[tp] = (producer.create_batch(), [])
                filling[tp][0].append(key=key, value=value, timestamp=None)
            members = filling[tp][1]
            if not members or members[-1] is not row:
                members.append(row)
        else:
            sending.append(row)
    for tp in list(filling):
        await submit(tp)
    results = await asyncio.wait_for(
        asyncio.gather(*(f for _, f in pending), return_exceptions=True), timeout=30
    )
    troubled: set[int] = set()
    for (members, _), result in zip(pending, results, strict=True):
        if not isinstance(result, BaseException):
            continue
        for row in members:
            if broker_trouble(result):
                batch.trouble = result
                troubled.add(row.id)
            elif row.id not in batch.failed:
                batch.failed[row.id] = (row, repr(result))
    batch.sent = [r for r in sending if r.id not in troubled and r.id not in batch.failed]
    if batch.sent:
        await topics.confirm(admin, {r.topic for r in batch.sent})
    return batch
