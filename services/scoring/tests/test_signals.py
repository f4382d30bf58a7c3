"""What the ladder and loyalty read besides purchases: member-event signals and the file's links,
decoded (bad ones refused, to the dead-letter topic), stored once, newest file version wins,
and a batch carrying them classifies whom they touch (real, migrated PostgreSQL)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from crm_libs.events.envelope import EventEnvelope
from scoring_service.scores import classify, signals
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed import ConsumedEvent, decode_event
from scoring_service.scores.handlers import make_batch_handler


def raw(
    type_: str, payload: dict[str, object], *, customer: str = "c1", store: str = "s1"
) -> bytes:
    return EventEnvelope(
        type=type_, store_id=store, customer_id=customer, payload=payload
    ).to_bytes()


def file(version: int, **changes: object) -> dict[str, object]:
    return {
        "timezone": "Asia/Shanghai",
        "status": "active",
        "referrer_id": None,
        "version": version,
        **changes,
    }


def test_member_event_signals_decode_and_bad_ones_are_refused() -> None:
    at = "2026-05-01T19:30:00+08:00"
    attended = decode_event(raw("event.attended", {"event_id": "ev1", "attended_at": at}))
    assert attended.signal == ("attended", "ev1", "c1", "s1", datetime.fromisoformat(at))
    guest = decode_event(
        raw("event.guest_brought", {"event_id": "ev1", "brought_at": at, "guest_customer_id": None})
    )
    assert guest.signal == ("guest_brought", "ev1", "c1", "s1", datetime.fromisoformat(at))
    # The customer service's type on the same topic: not scoring's, nothing done with it.
    visit = decode_event(raw("visit.recorded", {"visit_id": "v1", "occurred_at": at}))
    assert (visit.signal, visit.purchase, visit.link) == (None, None, None)
    for bad in (
        {"attended_at": at},
        {"event_id": "ev1"},
        {"event_id": "ev1", "attended_at": "soon"},
        {"event_id": 7, "attended_at": at},
    ):
        with pytest.raises(ValueError):
            decode_event(raw("event.attended", bad))
    with pytest.raises(ValueError):
        decode_event(raw("event.guest_brought", {"event_id": "ev1"}))


def test_the_files_referrer_and_competitors_products_decode() -> None:
    registered = decode_event(
        raw("customer.registered", {"timezone": "Asia/Shanghai", "file": file(1, referrer_id="r1")})
    )
    assert registered.prospect == ("c1", "s1", "Asia/Shanghai")
    assert registered.link == ("c1", "s1", "r1", False, 1)
    updated = decode_event(
        raw("customer.updated", {"file": file(4, uses_competitor_products=True), "changed": []})
    )
    assert updated.link == ("c1", "s1", None, True, 4)
    # Published before the file was carried: a prospect, no link.
    old = decode_event(raw("customer.registered", {"timezone": "Asia/Shanghai"}))
    assert old.prospect is not None and old.link is None
    for bad in (file(2, referrer_id=5), {"status": "active"}):
        with pytest.raises(ValueError):
            decode_event(raw("customer.updated", {"file": bad, "changed": []}))


def test_a_registration_that_says_nothing_has_no_link_or_district_to_store() -> None:
    """A registration's plain link and absent district read as no row (scores/consumed_event.py):
    nothing to store; a later event of the file carries its own, plain or not."""
    plain = decode_event(raw("customer.registered", {"file": file(1, district=None)}))
    assert plain.prospect is not None and (plain.link, plain.district) == (None, None)
    competitor = decode_event(
        raw("customer.registered", {"file": file(1, uses_competitor_products=True)})
    )
    assert (competitor.link, competitor.district) == (("c1", "s1", None, True, 1), None)
    placed = decode_event(raw("customer.registered", {"file": file(1, district="徐汇区")}))
    assert placed.link is None and placed.district is not None
    assert (placed.district.district, placed.district.version) == ("徐汇区", 1)
    # Decoded the long way (a version as text): the same.
    slow = orjson.loads(raw("customer.registered", {"file": file(1)}))
    slow["version"] = "1"
    assert decode_event(orjson.dumps(slow)).link is None
    # Any other event of the file stores what it says, nothing included.
    updated = decode_event(raw("customer.updated", {"file": file(2), "changed": []}))
    assert updated.link == ("c1", "s1", None, False, 2)
    assert updated.district is not None and updated.district.district is None


async def test_a_registration_stores_the_link_and_district_it_gives_and_no_other(
    session: AsyncSession,
) -> None:
    handle = make_batch_handler(as_of=None)
    store = "rl-s"

    def registered(customer: str, **changes: object) -> ConsumedEvent:
        return decode_event(
            raw("customer.registered", {"file": file(1, **changes)}, customer=customer, store=store)
        )

    await handle(
        session,
        [
            registered("rl-plain"),
            registered("rl-told", referrer_id="rl-plain", district="徐汇区"),
            registered("rl-switcher", uses_competitor_products=True),
        ],
    )
    links = await session.execute(
        text(
            "SELECT customer_id, referrer_id, uses_competitor, version FROM customer_link"
            " WHERE store_id = :s"
        ),
        {"s": store},
    )
    assert sorted(tuple(r) for r in links) == [
        ("rl-switcher", None, True, 1),
        ("rl-told", "rl-plain", False, 1),
    ]
    districts = await session.execute(
        text(
            "SELECT customer_id, district, version FROM analysis_customer_district"
            " WHERE store_id = :s"
        ),
        {"s": store},
    )
    assert [tuple(r) for r in districts] == [("rl-told", "徐汇区", 1)]
    # The referrer is a prospect with a referred file (no buyer yet): as classified as before.
    scores = await session.execute(
        text("SELECT customer_id, loyalty FROM customer_score WHERE store_id = :s"), {"s": store}
    )
    assert dict(scores.all()) == {
        "rl-plain": "floating",
        "rl-told": "floating",
        "rl-switcher": "switcher",
    }


async def test_signals_are_stored_once_and_follow_a_merge(session: AsyncSession) -> None:
    db = await driver_connection(session)
    at = datetime.now(UTC)
    seen = [
        ("attended", "ev9", "sig-a", "sig-s", at),
        ("guest_brought", "ev9", "sig-a", "sig-s", at),
    ]
    first = await signals.store_signals(db, seen)
    assert set(first) == {"sig-a"} and first["sig-a"] in {"event_attended", "guest_brought"}
    assert await signals.store_signals(db, seen) == {}  # a replay adds nothing
    await signals.move_signals(db, [("sig-a", "sig-survivor")])
    rows = await session.execute(
        text("SELECT kind, customer_id FROM customer_signal WHERE source_id = 'ev9' ORDER BY kind")
    )
    assert rows.all() == [("attended", "sig-survivor"), ("guest_brought", "sig-survivor")]


async def test_the_newest_file_version_wins_and_names_the_referrers(session: AsyncSession) -> None:
    db = await driver_connection(session)
    touched = await signals.store_links(
        db, [("lk-c", "lk-s", "lk-r1", False, 2), ("lk-c", "lk-s", "lk-r0", False, 1)]
    )
    assert touched == {"lk-r1": "referral", "lk-c": "file_changed"}
    # An older version changes nothing; a newer one moves the referrer: both referrers named.
    assert await signals.store_links(db, [("lk-c", "lk-s", None, True, 1)]) == {}
    touched = await signals.store_links(db, [("lk-c", "lk-s", "lk-r2", True, 3)])
    assert touched == {"lk-r1": "referral", "lk-r2": "referral", "lk-c": "file_changed"}
    # The same version again (a redelivery): nothing.
    assert await signals.store_links(db, [("lk-c", "lk-s", "lk-r2", True, 3)]) == {}


def _bought(customer: str, store: str, at: datetime) -> ConsumedEvent:
    return ConsumedEvent(
        event_id=f"e-{customer}-{at.timestamp()}",
        purchase=PurchaseSeen(
            f"p-{customer}-{at.timestamp()}",
            store,
            customer,
            at,
            at.date(),
            "Asia/Shanghai",
            Decimal("100.00"),
            30,
        ),
    )


async def test_a_batch_classifies_whom_its_signals_and_links_touch(session: AsyncSession) -> None:
    handle = make_batch_handler(as_of=None)
    store, now = "hb-s", datetime.now(UTC)
    await handle(
        session, [_bought(c, store, now - timedelta(days=3)) for c in ("hb-ref", "hb-att")]
    )
    await handle(
        session,
        [
            ConsumedEvent("e-link", link=("hb-new", store, "hb-ref", False, 1)),
            ConsumedEvent("e-att", signal=("attended", "ev-hb", "hb-att", store, now)),
        ],
    )
    levels = dict(
        (
            await session.execute(
                text("SELECT customer_id, ladder_level FROM customer_score WHERE store_id = :s"),
                {"s": store},
            )
        ).all()
    )
    assert levels == {"hb-ref": "0", "hb-att": "D"}  # the referred file has not bought yet
    # The referred file's first purchase makes its referrer B in the same batch.
    await handle(session, [_bought("hb-new", store, now - timedelta(hours=1))])
    rows = await session.execute(
        text(
            "SELECT previous, value, cause FROM score_history "
            "WHERE customer_id = 'hb-ref' AND field = 'ladder_level' ORDER BY id"
        )
    )
    assert rows.all() == [(None, "0", "purchase"), ("0", "B", "referral")]
    staged = await session.execute(
        text("SELECT envelope FROM outbox_event WHERE key = 'hb-ref' ORDER BY id DESC LIMIT 1")
    )
    payload = orjson.loads(orjson.dumps(staged.scalar_one()))["payload"]
    assert (payload["previous_ladder_level"], payload["ladder_level"], payload["cause"]) == (
        "0",
        "B",
        "referral",
    )


async def _score_writes(session: AsyncSession) -> tuple[int, int]:
    """customer_score's rows inserted and updated so far by this transaction."""
    row = await session.execute(
        text(
            "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'customer_score'"
        )
    )
    inserted, updated = row.one()
    return inserted, updated


async def test_a_plain_registration_is_one_row_written_and_nothing_announced(
    session: AsyncSession,
) -> None:
    handle = make_batch_handler(as_of=None)
    store = "pr-s"
    plain = [f"pr-c{n}" for n in range(5)]
    await handle(
        session,
        [
            decode_event(raw("customer.registered", {"file": file(1)}, customer=c, store=store))
            for c in plain
        ],
    )
    # Each file's row inserted as the classification leaves a file with no purchase, never
    # rewritten by it, and no score.changed: a file without a score is a prospect.
    assert await _score_writes(session) == (len(plain), 0)
    rows = await session.execute(
        text(
            "SELECT value_tier, ladder_level, ladder_score, loyalty, lifecycle, rfm_segment "
            "FROM customer_score WHERE store_id = :s"
        ),
        {"s": store},
    )
    assert rows.all() == [("prospect", None, None, "floating", None, None)] * len(plain)
    staged = await session.execute(
        text("SELECT count(*) FROM outbox_event WHERE key LIKE 'pr-%'"), {}
    )
    assert staged.scalar_one() == 0
    # Classifying them writes nothing: the row is what the classification gives.
    db = await driver_connection(session)
    now = datetime.now(UTC)
    assert await classify.classify_customers(db, customer_ids=plain, now=now, cause="x") == []
    assert await _score_writes(session) == (len(plain), 0)
    # A file recording competitors' products is classified at registration: a switcher.
    await handle(
        session,
        [
            decode_event(
                raw(
                    "customer.registered",
                    {"file": file(1, uses_competitor_products=True)},
                    customer="pr-sw",
                    store=store,
                )
            )
        ],
    )
    loyalty = await session.execute(
        text("SELECT loyalty FROM customer_score WHERE customer_id = 'pr-sw'")
    )
    assert loyalty.scalar_one() == "switcher"
