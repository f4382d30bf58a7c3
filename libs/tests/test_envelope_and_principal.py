import time
import uuid

import pytest

from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.ids import new_id
from crm_libs.pagination import decode_cursor, encode_cursor
from crm_libs.principal import Principal, Role, sign_principal, verify_principal
from crm_libs.problems import NotFound, ProblemError, Unauthorized

SECRET = "s" * 40


def test_envelope_round_trips_and_is_keyed_by_customer() -> None:
    event = EventEnvelope(
        type="purchase.recorded", store_id="s1", customer_id="c1", payload={"a": 1}
    )
    again = EventEnvelope.from_bytes(event.to_bytes())
    assert again == event
    assert event.key == b"c1"
    assert isinstance(again.event_id, uuid.UUID)
    assert again.occurred_at.tzinfo is not None
    assert Topics.dead_letter(Topics.PURCHASES) == "crm.purchases.v1.dlq"


def test_principal_signature_expiry_and_forgery() -> None:
    staff = Principal(subject="u1", role=Role.STAFF, store_id="s1")
    assert verify_principal(sign_principal(staff, secret=SECRET), secret=SECRET) == staff
    with pytest.raises(Unauthorized):
        verify_principal(sign_principal(staff, secret=SECRET), secret="x" * 40)
    with pytest.raises(Unauthorized):
        verify_principal(sign_principal(staff, secret=SECRET, ttl_seconds=-1), secret=SECRET)
    with pytest.raises(Unauthorized):
        verify_principal("not-a-token", secret=SECRET)


def test_store_scope() -> None:
    staff = Principal(subject="u1", role=Role.STAFF, store_id="s1")
    hq = Principal(subject="a", role=Role.HQ_ADMIN)
    assert staff.store_scope() == "s1" and hq.store_scope() is None
    staff.require_store("s1")
    hq.require_store("s2")
    with pytest.raises(NotFound):
        staff.require_store("s2")


def test_ids_are_time_ordered_uuid7() -> None:
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    assert first < second
    assert uuid.UUID(first).version == 7
    # Written from its bytes: the standard form, the RFC 4122 variant, the clock's milliseconds
    # in front, and the rest drawn anew each time.
    before = time.time_ns() // 1_000_000
    many = [new_id() for _ in range(1000)]
    after = time.time_ns() // 1_000_000
    assert all(str(uuid.UUID(i)) == i and uuid.UUID(i).variant == uuid.RFC_4122 for i in many)
    assert all(before <= uuid.UUID(i).int >> 80 <= after for i in many)
    assert len({i[14:] for i in many}) == len(many)
    # Many a millisecond, yet in the order they were made: a ledger's entries written in one
    # millisecond list in order (keyset pagination by id).
    assert sorted(many) == many


def test_cursor_round_trip_and_refusal() -> None:
    assert decode_cursor(encode_cursor("abc-123")) == "abc-123"
    for bad in ("%%%", "bm90LW91cnM", ""):
        with pytest.raises(ProblemError):
            decode_cursor(bad)
