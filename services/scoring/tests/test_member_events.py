"""The stores' member events as crm.engagement.v1 announces them: stored once, the newest
schedule winning, a cancellation final, and the event named before the expected date at the
window's edges (real, migrated PostgreSQL)."""

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from scoring_service.scores.consumed import ConsumedEvent
from scoring_service.scores.handlers import make_batch_handler
from scoring_service.scores.member_events import (
    Cancelled,
    Scheduled,
    invitation_window,
    next_event,
)

ZONE = "Asia/Shanghai"


async def rows(session: AsyncSession, store: str) -> list[tuple[object, ...]]:
    found = await session.execute(
        text(
            "SELECT event_id, starts_at, title, cancelled_at IS NOT NULL FROM member_event "
            "WHERE store_id = :s ORDER BY event_id"
        ),
        {"s": store},
    )
    return [tuple(r) for r in found.all()]


async def test_schedules_are_idempotent_newest_wins_and_a_cancellation_is_final(
    session: AsyncSession,
) -> None:
    handle = make_batch_handler(as_of=None)
    store, t = "me-s", datetime(2026, 6, 1, 11, tzinfo=UTC)
    first = Scheduled("me-1", store, t, "联谊会", t - timedelta(days=9))
    moved = Scheduled("me-1", store, t + timedelta(days=2), "联谊会（改期）", t - timedelta(days=5))
    await handle(session, [ConsumedEvent("e1", scheduled=first)])
    await handle(
        session, [ConsumedEvent("e2", scheduled=moved), ConsumedEvent("e1", scheduled=first)]
    )
    # The older announcement delivered again (alone, later) changes nothing.
    await handle(session, [ConsumedEvent("e1", scheduled=first)])
    assert await rows(session, store) == [("me-1", moved.starts_at, moved.title, False)]

    # A cancellation is final; a schedule delivered after it does not bring the event back.
    await handle(session, [ConsumedEvent("e3", cancelled=Cancelled("me-1", store, t))])
    newer = moved._replace(announced_at=t + timedelta(days=1))
    await handle(session, [ConsumedEvent("e4", scheduled=newer)])
    assert (await rows(session, store))[0][3] is True

    # A cancellation before its schedule: kept, and the schedule arrives cancelled.
    await handle(session, [ConsumedEvent("e5", cancelled=Cancelled("me-2", store, t))])
    await handle(session, [ConsumedEvent("e6", scheduled=first._replace(event_id="me-2"))])
    assert (await rows(session, store))[1] == ("me-2", first.starts_at, first.title, True)


def test_the_invitation_window_ends_with_the_expected_day_in_the_stores_zone() -> None:
    now = datetime(2026, 6, 1, 4, tzinfo=UTC)  # 12:00 in Shanghai
    window = invitation_window(now=now, next_purchase_on=date(2026, 6, 10), timezone=ZONE)
    # 2026-06-11 00:00 in Shanghai is 2026-06-10 16:00 UTC.
    assert window == (now, datetime(2026, 6, 10, 16, tzinfo=UTC))
    # Today is still ahead (the evening), yesterday is not; unknown: no window.
    assert invitation_window(now=now, next_purchase_on=date(2026, 6, 1), timezone=ZONE)
    assert invitation_window(now=now, next_purchase_on=date(2026, 5, 31), timezone=ZONE) is None
    assert invitation_window(now=now, next_purchase_on=None, timezone=ZONE) is None


async def test_the_earliest_event_not_started_and_on_or_before_the_expected_day(
    session: AsyncSession,
) -> None:
    handle = make_batch_handler(as_of=None)
    store, other = "me-n", "me-other"
    now = datetime.now(UTC).replace(microsecond=0)
    runs_out = (now + timedelta(days=20)).date()
    end = datetime.fromisoformat(f"{runs_out + timedelta(days=1)}T00:00:00+08:00")

    def scheduled(event_id: str, starts_at: datetime, store_id: str = store) -> ConsumedEvent:
        return ConsumedEvent(
            f"e-{event_id}",
            scheduled=Scheduled(event_id, store_id, starts_at, None, now - timedelta(days=30)),
        )

    await handle(
        session,
        [
            scheduled("me-started", now - timedelta(minutes=1)),
            scheduled("me-other-store", now + timedelta(hours=1), other),
            scheduled("me-last-minute", end - timedelta(minutes=1)),  # on the run-out day
            scheduled("me-day-after", end),
        ],
    )
    db = await driver_connection(session)

    async def named(runs_out_on: date | None) -> str | None:
        found = await next_event(
            db, store_id=store, now=now, next_purchase_on=runs_out_on, timezone=ZONE
        )
        return None if found is None else found.event_id

    assert await named(runs_out) == "me-last-minute"
    assert await named(runs_out - timedelta(days=1)) is None
    await handle(session, [scheduled("me-soon", now + timedelta(days=3))])
    assert await named(runs_out) == "me-soon"
    await handle(session, [ConsumedEvent("e-x", cancelled=Cancelled("me-soon", store, now))])
    assert await named(runs_out) == "me-last-minute"
    assert await named(None) is None  # a prospect: no expected date, no event
