"""A fetched batch decoded: its events, the records that are not valid events (poison), and
its claims and the handler's ``prepare`` made ahead, while the previous batch is applied."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRecord, TopicPartition

from crm_libs.events.claims import Claimable, claim_rows
from crm_libs.events.envelope import EventEnvelope
from crm_libs.events.event_types import UnknownEventType, check_event_type

E = TypeVar("E", bound=Claimable)

# Turns a record's value, read from the topic named, into an event, raising ValueError or
# TypeError (pydantic's and orjson's errors are ValueErrors) for one that is not a valid event
# of that topic (crm_libs.events.event_types.UnknownEventType for a type its contract does not
# name): it is dead-lettered.
Decoder = Callable[[bytes, str], E]
UNDECODABLE = (ValueError, TypeError)


def decode_envelope(raw: bytes, topic: str) -> EventEnvelope:
    """The default decoder: the envelope, of a type ``topic``'s contract names."""
    envelope = EventEnvelope.from_bytes(raw)
    check_event_type(topic, envelope.type)
    return envelope


# Records decoded between two yields to the event loop: the batch in the database meanwhile
# gets its next statement sent without waiting for the whole next batch to be decoded.
_DECODE_SLICE = 250


@dataclass
class Fetched(Generic[E]):
    """One ``getmany``: its records by partition, decoded, and those that could not be.

    ``records[i]`` holds ``events[i]``: two lists rather than a pair per event, which thousands
    of times per batch would only give the garbage collector more to scan."""

    batches: dict[TopicPartition, list[ConsumerRecord]]
    records: list[ConsumerRecord] = field(default_factory=list)
    events: list[E] = field(default_factory=list)
    poison: list[tuple[ConsumerRecord, str]] = field(default_factory=list)
    # Made before the batch's turn, while the previous batch's transaction runs.
    ids: list[str] = field(default_factory=list)
    claims: list[tuple[str, str]] = field(default_factory=list)
    prepared: Any = None


async def decode_batch(
    batches: dict[TopicPartition, list[ConsumerRecord]],
    *,
    decode: Decoder[E],
    consumer: str,
    idempotent: Callable[[E], bool] | None,
    prepare: Callable[[list[E]], Any] | None,
) -> Fetched[E]:
    """Decode every record; those that are not valid events are set aside as poison."""
    fetched: Fetched[E] = Fetched(batches)
    done = 0
    for records in batches.values():
        for record in records:
            try:
                fetched.events.append(decode(record.value, record.topic))
                fetched.records.append(record)
            except UnknownEventType as exc:
                fetched.poison.append((record, str(exc)))
            except UNDECODABLE as exc:
                fetched.poison.append((record, f"undecodable: {exc}"))
            done += 1
            if done % _DECODE_SLICE == 0:
                await asyncio.sleep(0)
    fetched.ids = [str(e.event_id) for e in fetched.events]
    claimed = (
        fetched.ids
        if idempotent is None
        else [i for i, e in zip(fetched.ids, fetched.events, strict=True) if not idempotent(e)]
    )
    fetched.claims = claim_rows(consumer=consumer, event_ids=claimed)
    if prepare is not None and fetched.events:
        await asyncio.sleep(0)
        fetched.prepared = prepare(fetched.events)
    return fetched
