"""The consumer's decoder: a customer file's event straight into what engagement keeps of it.

Through EventEnvelope and pydantic, a file's event cost more of engagement's Python time than
everything else it does with one (the envelope, its payload as dicts, the file's models, then
the copy's row made of them): an import's hundred thousand registrations, some 20 µs each.
msgspec reads the same JSON into the few fields engagement keeps (customers/wire.py), and
:class:`~engagement_service.customers.events.CustomerChangeSeen` stands for the event in the
batch. Whatever msgspec refuses (a value of another type than the customer service writes, a
UUID spelt otherwise) is decoded exactly as before, through EventEnvelope, so an event is
accepted, applied or dead-lettered on the same terms either way. The other topics' events are
EventEnvelopes as before.
"""

import re
from typing import TypeAlias

import msgspec

from crm_libs.events.batches import decode_envelope
from crm_libs.events.envelope import EventEnvelope, Topics
from engagement_service.customers.events import CUSTOMER_EVENTS, CustomerChangeSeen
from engagement_service.customers.wire import WireChange, WireEnvelope, WireFile

# What the handler is given: a file's event decoded here, anything else an envelope.
Consumed: TypeAlias = EventEnvelope | CustomerChangeSeen

_envelopes = msgspec.json.Decoder(WireEnvelope)


# A time's fraction past the microsecond: msgspec rounds it, pydantic cuts it off.
_PAST_MICROSECONDS = re.compile(rb"\.[0-9]{7}")


def _rounded(change: WireChange, raw: bytes) -> bool:
    """Whether the time engagement keeps (the SMS consent's) may be one msgspec rounded: then
    the event is decoded the long way, for the time pydantic read before. Looked for only in a
    file that has the time (most have none)."""
    return (
        isinstance(change.file, WireFile)
        and change.file.consents.sms.at is not None
        and _PAST_MICROSECONDS.search(raw) is not None
    )


def decode_event(raw: bytes, topic: str) -> Consumed:
    """The event in ``raw``, read from ``topic``; ValueError (a dead letter) where EventEnvelope
    would raise it."""
    if topic != Topics.CUSTOMERS:
        return decode_envelope(raw, topic)
    try:
        envelope = _envelopes.decode(raw)
        # Types of the topic's contract (crm_libs.events.event_types) engagement applies.
        if envelope.type in CUSTOMER_EVENTS:
            change = CustomerChangeSeen.from_wire(envelope)
            if change is not None and not _rounded(envelope.payload, raw):
                return change
    except msgspec.DecodeError:  # not JSON, or not of the types above (ValidationError)
        pass
    # The contract's other types (customer.level_changed: nothing engagement keeps), a type it
    # does not name, and whatever msgspec refused: the envelope as before (the handler reads
    # the file of a customer event, or fails on it, as before too).
    return decode_envelope(raw, topic)
