"""Refill reminders, routine cadence and recovery from ``crm.scores.v1`` on a real, migrated
PostgreSQL: every event goes through the consumer's handler, the routine job runs as its worker
runs it (leader lock, each store at its local midnight) with the clock given, and the tasks are
read back from the table. Days the handler plans are counted from the store's today."""

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.envelope import EventEnvelope
from engagement_service.care.routine import Band, band_of, plan_as_leader, routine_days
from engagement_service.care.scheduled import LeadDays
from engagement_service.care.scheduled import plan_as_leader as plan_special_days
from engagement_service.followups.routine_care import move_to_routine_care
from engagement_service.handlers import handle_events

SHANGHAI = ZoneInfo("Asia/Shanghai")
_stores = itertools.count(1)


def new_store() -> str:
    return f"scores-{next(_stores)}"


def cid(store: str, customer: str) -> str:
    """A customer id of its own per test (the database is the module's)."""
    return f"{store}-{customer}"


def today() -> date:
    return datetime.now(SHANGHAI).date()


def registered(
    store: str, customer: str, *, owner: str | None, birthday: str | None = None
) -> EventEnvelope:
    file: dict[str, Any] = {
        "timezone": "Asia/Shanghai",
        "status": "active",
        "owner_staff_id": owner,
        "birthday": birthday,
        "birthday_calendar": "solar",
        "wedding_anniversary": None,
        "relations": [],
        "consents": {"sms": {"granted": False, "at": None, "channel": None}},
        "version": 1,
    }
    return EventEnvelope(
        type="customer.registered",
        store_id=store,
        customer_id=cid(store, customer),
        payload={"file": file},
    )


def merged(store: str, customer: str, *, into: str, owner: str | None) -> EventEnvelope:
    event = registered(store, customer, owner=owner)
    event.payload["file"] |= {"status": "merged", "version": 2}
    return event.model_copy(
        update={
            "type": "customer.merged",
            "payload": event.payload | {"merged_into": cid(store, into)},
        }
    )


def score(store: str, customer: str, version: int, **fields: Any) -> EventEnvelope:
    """A score.changed; the new fields only when given (an older scoring leaves them out)."""
    payload: dict[str, Any] = {
        "value_tier": "small",
        "previous_tier": "small",
        "ladder_level": "0",
        "previous_ladder_level": "0",
        "ladder_score": 0,
        "lifecycle": "new_this_year",
        "previous_lifecycle": "new_this_year",
        "net_spend_365d": "100.00",
        "cause": "purchase",
        "version": version,
    }
    for key, value in fields.items():
        payload[key] = value.isoformat() if isinstance(value, date) else value
    return EventEnvelope(
        type="score.changed", store_id=store, customer_id=cid(store, customer), payload=payload
    )


def refunded(store: str, customer: str, *, reason: str, n: int = 1) -> EventEnvelope:
    return EventEnvelope(
        type="purchase.refunded",
        store_id=store,
        customer_id=cid(store, customer),
        payload={
            "purchase_id": f"p-{customer}-{n}",
            "refund_id": f"r-{customer}-{n}",
            "reason": reason,
            "refunded_at": datetime.now(UTC).isoformat(),
            "refunded_on": today().isoformat(),
            "lines": [{"sku": "SKU-1", "qty": 1}],
        },
    )


async def consume(sessions: async_sessionmaker[AsyncSession], *events: EventEnvelope) -> None:
    async with sessions() as session, session.begin():
        await handle_events(session, list(events))


async def tasks(
    sessions: async_sessionmaker[AsyncSession], store: str, kind: str
) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await session.execute(
            text(
                """
                SELECT id, customer_id, due_on, method, methods_allowed, status, closed_reason,
                       assignee_staff_id, purpose, recovery_reason, with_manager, occasion
                FROM task WHERE store_id = :s AND kind = :k ORDER BY due_on, method, id
                """
            ),
            {"s": store, "k": kind},
        )
        return [
            dict(r._mapping) | {"customer_id": r.customer_id.removeprefix(f"{store}-")}
            for r in rows
        ]


def open_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "open"]


# --- refill reminders ------------------------------------------------------------------------


async def test_a_refill_is_due_three_days_before_the_run_out_and_moves_with_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store, day = new_store(), today()
    await consume(sessions, registered(store, "c1", owner="s1"))
    await consume(sessions, score(store, "c1", 1, supply_runs_out_on=day + timedelta(days=20)))
    [first] = await tasks(sessions, store, "refill")
    assert (first["due_on"], first["method"], first["assignee_staff_id"], first["status"]) == (
        day + timedelta(days=17),
        "phone",
        "s1",
        "open",
    )
    assert first["purpose"]

    # A purchase extends the supply: the same task moves, none is added.
    await consume(sessions, score(store, "c1", 2, supply_runs_out_on=day + timedelta(days=50)))
    [moved] = await tasks(sessions, store, "refill")
    assert (moved["id"], moved["due_on"]) == (first["id"], day + timedelta(days=47))

    # Redelivered and older events, and an event without the field, change nothing.
    await consume(sessions, score(store, "c1", 1, supply_runs_out_on=day + timedelta(days=20)))
    await consume(sessions, score(store, "c1", 2, supply_runs_out_on=day + timedelta(days=50)))
    await consume(sessions, score(store, "c1", 3, value_tier="medium"))
    assert await tasks(sessions, store, "refill") == [moved]

    # A run-out less than three days away is due today; one already past, or none, closes it.
    await consume(sessions, score(store, "c1", 4, supply_runs_out_on=day + timedelta(days=1)))
    [soon] = await tasks(sessions, store, "refill")
    assert (soon["id"], soon["due_on"]) == (first["id"], day)
    await consume(sessions, score(store, "c1", 5, supply_runs_out_on=None))
    [closed] = await tasks(sessions, store, "refill")
    assert (closed["status"], closed["closed_reason"]) == ("closed", "no_supply")

    # The next run-out gets a new reminder: never two open.
    await consume(sessions, score(store, "c1", 6, supply_runs_out_on=day + timedelta(days=30)))
    rows = await tasks(sessions, store, "refill")
    assert [(r["status"], r["due_on"]) for r in rows] == [
        ("closed", day),
        ("open", day + timedelta(days=27)),
    ]


async def test_a_done_reminder_is_not_planned_again_for_the_same_run_out(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store, day = new_store(), today()
    runs_out = day + timedelta(days=10)
    await consume(sessions, registered(store, "c1", owner="s1"))
    await consume(sessions, score(store, "c1", 1, supply_runs_out_on=runs_out))
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE task SET status = 'done' WHERE store_id = :s AND kind = 'refill'"),
            {"s": store},
        )
    # The tier moves, the run-out is carried again unchanged: no second reminder.
    await consume(sessions, score(store, "c1", 2, value_tier="medium", supply_runs_out_on=runs_out))
    rows = await tasks(sessions, store, "refill")
    assert [r["status"] for r in rows] == ["done"]


async def test_events_without_the_new_fields_plan_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = new_store()
    await consume(sessions, registered(store, "c1", owner="s1"))
    async with sessions() as session, session.begin():
        await move_to_routine_care(
            session, store_id=store, customer_id=cid(store, "c1"), plan_id="p", since=today()
        )
    await consume(sessions, score(store, "c1", 1), score(store, "c1", 2, value_tier="major"))
    assert await tasks(sessions, store, "refill") == []
    assert await tasks(sessions, store, "routine") == []
    async with sessions() as session:
        version = (
            await session.execute(
                text("SELECT version FROM customer_score_seen WHERE customer_id = :c"),
                {"c": cid(store, "c1")},
            )
        ).scalar_one()
    assert version == 2


# --- routine cadence -------------------------------------------------------------------------


def test_each_bands_calls_and_visits_over_february() -> None:
    since, start = date(2027, 1, 1), date(2027, 2, 1)

    def counted(band: Band) -> tuple[int, int]:
        days = routine_days(since=since, band=band, start=start, days=28)
        return (
            sum(1 for _, m in days if m == "phone"),
            sum(1 for _, m in days if m == "home"),
        )

    # this month: a call every 2 days, a visit weekly (a call on a visit's day is not made).
    assert counted(Band.THIS_MONTH) == (12, 4)
    # 2 months: every 3 days, weekly.
    assert counted(Band.TWO_MONTHS) == (8, 4)
    # 3 months: weekly, every 2 weeks.
    assert counted(Band.THREE_MONTHS) == (4, 2)
    # later: every 2 weeks and monthly, raised to the baseline's two visits a month.
    assert counted(Band.LATER) == (2, 2)


def test_the_band_is_the_month_of_the_expected_purchase() -> None:
    assert band_of(date(2027, 1, 31), today=date(2027, 1, 31)) == Band.THIS_MONTH
    assert band_of(date(2027, 1, 2), today=date(2027, 1, 31)) == Band.THIS_MONTH  # overdue
    assert band_of(date(2027, 2, 1), today=date(2027, 1, 31)) == Band.TWO_MONTHS
    assert band_of(date(2027, 2, 1), today=date(2027, 2, 1)) == Band.THIS_MONTH
    assert band_of(date(2027, 3, 31), today=date(2027, 1, 31)) == Band.THREE_MONTHS
    assert band_of(date(2027, 4, 1), today=date(2027, 1, 31)) == Band.LATER
    assert band_of(None, today=date(2027, 1, 31)) == Band.LATER


def half_past_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 30), SHANGHAI).astimezone(UTC)


async def run_routine(
    sessions: async_sessionmaker[AsyncSession], day: date
) -> dict[str, int] | None:
    return await plan_as_leader(
        sessions, now=half_past_midnight(day), horizon_days=14, default_timezone="Asia/Shanghai"
    )


async def test_the_daily_job_plans_a_rolling_horizon_replanned_across_a_month_boundary(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = new_store()
    await consume(sessions, registered(store, "c1", owner="s1"))
    async with sessions() as session, session.begin():
        await move_to_routine_care(
            session,
            store_id=store,
            customer_id=cid(store, "c1"),
            plan_id="p",
            since=date(2027, 1, 1),
        )
    await consume(sessions, score(store, "c1", 1, expected_purchase_on=date(2027, 2, 10)))

    # 31 January: February is the next month, calls every 3 days, visits weekly, 14 days.
    planned = await run_routine(sessions, date(2027, 1, 31))
    assert planned is not None and planned[store] == 7
    feb = [(r["due_on"].day, r["method"]) for r in open_of(await tasks(sessions, store, "routine"))]
    assert feb == [
        (31, "phone"),
        (1, "home"),
        (3, "phone"),
        (6, "phone"),
        (8, "home"),
        (9, "phone"),
        (12, "phone"),
    ]
    assert {r["assignee_staff_id"] for r in await tasks(sessions, store, "routine")} == {"s1"}
    # Rerun the same day: nothing more.
    assert await run_routine(sessions, date(2027, 1, 31)) == {}

    # 1 February: the purchase is this month's, calls every 2 days from today on; the past
    # day's task stays, the calls the new cadence does not ask for are replaced.
    await run_routine(sessions, date(2027, 2, 1))
    rows = await tasks(sessions, store, "routine")
    assert [(r["due_on"], r["method"]) for r in open_of(rows)] == [
        (date(2027, 1, 31), "phone"),
        (date(2027, 2, 1), "home"),
        (date(2027, 2, 2), "phone"),
        (date(2027, 2, 4), "phone"),
        (date(2027, 2, 6), "phone"),
        (date(2027, 2, 8), "home"),
        (date(2027, 2, 10), "phone"),
        (date(2027, 2, 12), "phone"),
        (date(2027, 2, 14), "phone"),
    ]
    assert sorted(
        (r["due_on"].day, r["closed_reason"]) for r in rows if r["status"] == "closed"
    ) == [(3, "replanned"), (9, "replanned")]


async def test_a_new_expected_purchase_replans_the_horizon_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store, day = new_store(), today()
    since = day - timedelta(days=10)
    await consume(sessions, registered(store, "c1", owner="s1"))
    async with sessions() as session, session.begin():
        await move_to_routine_care(
            session, store_id=store, customer_id=cid(store, "c1"), plan_id="p", since=since
        )
    await consume(sessions, score(store, "c1", 1, expected_purchase_on=day + timedelta(days=400)))
    later = open_of(await tasks(sessions, store, "routine"))
    # Every 14 days: one call and one visit in the 14 days.
    assert sorted(r["method"] for r in later) == ["home", "phone"]

    await consume(sessions, score(store, "c1", 2, expected_purchase_on=day))
    soon = open_of(await tasks(sessions, store, "routine"))
    calls = sorted(r["due_on"] for r in soon if r["method"] == "phone")
    visits = sorted(r["due_on"] for r in soon if r["method"] == "home")
    assert len(visits) == 2 and visits[1] - visits[0] == timedelta(days=7)
    assert all(day <= d < day + timedelta(days=14) for d in calls + visits)
    assert all(((d - since).days) % 2 == 0 for d in calls)
    assert len(calls) >= 5
    assert [(d, "phone") for d in calls] + [(d, "home") for d in visits] == sorted(
        [
            *(
                (d, m.value)
                for d, m in routine_days(since=since, band=Band.THIS_MONTH, start=day, days=14)
                if m == "phone"
            ),
            *(
                (d, m.value)
                for d, m in routine_days(since=since, band=Band.THIS_MONTH, start=day, days=14)
                if m == "home"
            ),
        ],
        key=lambda dm: (dm[1] == "home", dm[0]),
    )
    # Redelivered: nothing changes.
    await consume(sessions, score(store, "c1", 2, expected_purchase_on=day))
    assert open_of(await tasks(sessions, store, "routine")) == soon


# --- recovery --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refund_reason", "reason", "method", "within", "with_manager"),
    [
        ("no_effect", "product", "expert_phone", 2, True),
        ("quality", "product", "expert_phone", 2, True),
        ("pushed_too_hard", "service", "home", 2, True),
        ("family_objection", "unknown", "home", 7, False),
        (None, "unknown", "home", 7, False),
    ],
)
async def test_a_stopped_customer_gets_one_recovery_task_by_reason(
    sessions: async_sessionmaker[AsyncSession],
    refund_reason: str | None,
    reason: str,
    method: str,
    within: int,
    with_manager: bool,
) -> None:
    store, day = new_store(), today()
    await consume(sessions, registered(store, "c1", owner="s1"))
    if refund_reason:
        await consume(sessions, refunded(store, "c1", reason=refund_reason))
    stopped = score(store, "c1", 1, lifecycle="stopped", previous_lifecycle="active_core")
    await consume(sessions, stopped)
    await consume(sessions, stopped)  # redelivered
    # Still stopped at a newer version (a tier change): no second task.
    await consume(sessions, score(store, "c1", 2, lifecycle="stopped", value_tier="inactive"))
    [task] = await tasks(sessions, store, "recovery")
    assert (
        task["recovery_reason"],
        task["method"],
        task["due_on"],
        task["with_manager"],
        task["assignee_staff_id"],
    ) == (reason, method, day + timedelta(days=within), with_manager, "s1")
    assert task["method"] in task["methods_allowed"]


async def test_the_last_reason_seen_decides(sessions: async_sessionmaker[AsyncSession]) -> None:
    store = new_store()
    await consume(sessions, registered(store, "c1", owner="s1"))
    await consume(sessions, refunded(store, "c1", reason="pushed_too_hard", n=1))
    await consume(sessions, refunded(store, "c1", reason="quality", n=2))
    await consume(sessions, score(store, "c1", 1, lifecycle="stopped"))
    [task] = await tasks(sessions, store, "recovery")
    assert task["recovery_reason"] == "product"


# --- merges ----------------------------------------------------------------------------------


async def test_a_merge_leaves_one_open_special_day_and_one_refill_on_the_survivor(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store, day = new_store(), date(2027, 5, 1)
    await consume(
        sessions,
        registered(store, "a", owner="s1", birthday="1950-05-02"),
        registered(store, "b", owner="s2", birthday="1950-05-02"),
    )
    await plan_special_days(
        sessions,
        now=half_past_midnight(day),
        lead=LeadDays(personal=3, festival=0, season=0),
        default_timezone="Asia/Shanghai",
    )
    runs_out = today() + timedelta(days=30)
    await consume(
        sessions,
        score(store, "a", 1, supply_runs_out_on=runs_out),
        score(store, "b", 1, supply_runs_out_on=runs_out + timedelta(days=5)),
    )
    assert len(open_of(await tasks(sessions, store, "special_day"))) == 2
    await consume(sessions, merged(store, "b", into="a", owner="s2"))
    birthdays = await tasks(sessions, store, "special_day")
    assert [(r["customer_id"], r["status"]) for r in open_of(birthdays)] == [("a", "open")]
    assert [r["closed_reason"] for r in birthdays if r["status"] == "closed"] == ["merged"]
    refills = await tasks(sessions, store, "refill")
    assert [(r["customer_id"], r["due_on"]) for r in open_of(refills)] == [
        ("a", runs_out - timedelta(days=3))
    ]
