"""The supply run-out and the expected purchase date on every ``score.changed``, published when
either moves (scores/expected_dates.py): a purchase, a refund, a member event scheduled or
cancelled before a run-out, the daily ageing once an event's day has passed; the consumer's
handler on PostgreSQL, what it stages read back from the outbox."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from scoring_service.config import Settings
from scoring_service.scores import scheduled
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed import ConsumedEvent
from scoring_service.scores.handlers import make_batch_handler
from scoring_service.scores.member_events import Cancelled, Scheduled
from scoring_service.scores.models import CustomerScore
from scoring_service.scores.predictions import predictions_public
from scoring_service.scores.refund_facts import RefundSeen

handle = make_batch_handler(as_of=None)
ZONE = "Asia/Shanghai"


def today() -> date:
    return datetime.now(ZoneInfo(ZONE)).date()


def bought(store: str, customer: str, *, on: date, supply_days: int = 30) -> PurchaseSeen:
    at = datetime.combine(on, time(10), ZoneInfo(ZONE))
    return PurchaseSeen(
        purchase_id=f"{customer}-{uuid.uuid4().hex[:8]}",
        store_id=store,
        customer_id=customer,
        purchased_at=at,
        purchased_on=on,
        timezone=ZONE,
        total=Decimal("100.00"),
        supply_days=supply_days,
    )


def event(**kind: Any) -> ConsumedEvent:
    return ConsumedEvent(event_id=str(uuid.uuid4()), **kind)


def member_event(store: str, event_id: str, on: date) -> Scheduled:
    starts = datetime.combine(on, time(14), ZoneInfo(ZONE))
    return Scheduled(event_id, store, starts, "联谊会", datetime.now(UTC))


async def published(session: AsyncSession, customer: str) -> list[dict[str, Any]]:
    """The payloads staged for ``customer``, oldest first."""
    rows = await session.execute(
        text("SELECT envelope FROM outbox_event WHERE key = :k ORDER BY id"), {"k": customer}
    )
    return [EventEnvelope.model_validate(e).payload for e in rows.scalars()]


def dates(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    return payload["supply_runs_out_on"], payload["expected_purchase_on"]


async def shown(session: AsyncSession, customer: str) -> date | None:
    """The expected date ``GET /customers/{id}/score`` shows (its predictions)."""
    score = await session.get(CustomerScore, customer, populate_existing=True)
    assert score is not None
    values = await predictions_public(session, score=score, settings=Settings())
    return values.next_purchase_on


async def test_a_purchase_publishes_both_dates_and_a_refund_moves_them_back(
    session: AsyncSession,
) -> None:
    store, customer = f"ed-{uuid.uuid4().hex[:6]}", f"ed-c-{uuid.uuid4().hex[:6]}"
    first = bought(store, customer, on=today() - timedelta(days=10))
    await handle(session, [event(purchase=first)])
    runs_out = today() + timedelta(days=20)
    [made] = await published(session, customer)
    assert dates(made) == (runs_out.isoformat(), runs_out.isoformat())

    # A second purchase moves only the run-out: one event, its tier, ladder and lifecycle
    # as they were, the new dates.
    second = bought(store, customer, on=today() - timedelta(days=1))
    await handle(session, [event(purchase=second)])
    moved = (await published(session, customer))[1:]
    later = runs_out + timedelta(days=30)
    assert [dates(p) for p in moved] == [(later.isoformat(), later.isoformat())]
    assert moved[0]["cause"] == "purchase" and moved[0]["version"] == made["version"] + 1
    assert await shown(session, customer) == later

    # The second purchase refunded with its supply: the dates move back, published once.
    refund = RefundSeen(
        refund_id=f"rf-{uuid.uuid4().hex[:8]}",
        purchase_id=second.purchase_id,
        store_id=store,
        customer_id=customer,
        refunded_at=datetime.now(UTC),
        total=Decimal("50.00"),
        supply_days=30,
    )
    await handle(session, [event(refund=refund)])
    after_refund = (await published(session, customer))[2:]
    assert dates(after_refund[-1]) == (runs_out.isoformat(), runs_out.isoformat())
    assert [p["cause"] for p in after_refund if dates(p) != dates(moved[0])] == ["refund"]
    assert await shown(session, customer) == runs_out

    # Delivered again: nothing new.
    count = len(await published(session, customer))
    await handle(session, [event(purchase=second), event(refund=refund)])
    assert len(await published(session, customer)) == count


async def test_a_member_event_before_the_run_out_moves_the_expected_date(
    session: AsyncSession,
) -> None:
    store = f"me-{uuid.uuid4().hex[:6]}"
    soon, late, prospect = (f"{store}-{n}" for n in ("soon", "late", "prospect"))
    await handle(
        session,
        [
            event(purchase=bought(store, soon, on=today(), supply_days=10)),
            event(purchase=bought(store, late, on=today(), supply_days=60)),
            event(prospect=(prospect, store, ZONE)),
        ],
    )
    counts = {c: len(await published(session, c)) for c in (soon, late, prospect)}
    on = today() + timedelta(days=20)  # after soon's run-out, before late's
    meeting = member_event(store, f"ev-{uuid.uuid4().hex[:6]}", on)
    await handle(session, [event(scheduled=meeting)])
    [changed] = (await published(session, late))[counts[late] :]
    runs_out = (today() + timedelta(days=60)).isoformat()
    assert dates(changed) == (runs_out, on.isoformat())
    assert changed["cause"] == "member_event"
    assert changed["value_tier"] == changed["previous_tier"]
    assert await shown(session, late) == on
    # Not before soon's run-out; a prospect has no date: nothing for them.
    for customer in (soon, prospect):
        assert len(await published(session, customer)) == counts[customer]

    # The same schedule delivered again: nothing new.
    await handle(session, [event(scheduled=meeting)])
    assert len(await published(session, late)) == counts[late] + 1

    # Cancelled: the run-out is the expected date again.
    await handle(session, [event(cancelled=Cancelled(meeting.event_id, store, datetime.now(UTC)))])
    again = (await published(session, late))[-1]
    assert dates(again) == (runs_out, runs_out)
    assert await shown(session, late) == date.fromisoformat(runs_out)


async def test_the_daily_ageing_publishes_when_the_events_day_has_passed(
    session: AsyncSession,
) -> None:
    store = f"ag-{uuid.uuid4().hex[:6]}"
    customer = f"{store}-c"
    await handle(session, [event(purchase=bought(store, customer, on=today(), supply_days=60))])
    on = today() + timedelta(days=5)
    await handle(session, [event(scheduled=member_event(store, f"ev-{store}", on))])
    assert dates((await published(session, customer))[-1])[1] == on.isoformat()
    count = len(await published(session, customer))

    # The store's midnight the day before the event: still ahead, nothing published.
    before = on - timedelta(days=1)
    await scheduled.age_store(session, store_id=store, today=before, as_of=before)
    assert len(await published(session, customer)) == count
    # The day after it: the run-out is the expected date again, published as the ageing's.
    after = on + timedelta(days=1)
    await scheduled.age_store(session, store_id=store, today=after, as_of=after)
    aged = (await published(session, customer))[count:]
    runs_out = (today() + timedelta(days=60)).isoformat()
    assert [(dates(p), p["cause"]) for p in aged] == [((runs_out, runs_out), "ageing")]
