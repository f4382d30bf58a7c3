"""Complaints on engagement's database: the four steps in order and once each, the second round
and its follow-up task when the customer is not satisfied, the store's statistics, and the
category kept as the customer's stop reason. Times are relative to today in the store's zone."""

from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from crm_libs.pagination import PageParams
from crm_libs.principal import Principal, Role
from crm_libs.problems import Conflict, NotFound
from engagement_service.care.stop_reasons import StopReason, stop_reasons
from engagement_service.complaints import service
from engagement_service.complaints.schemas import Category, ComplaintCreate, StepTaken
from engagement_service.complaints.stats import complaint_stats
from engagement_service.handlers import handle_events

ZONE = "Asia/Shanghai"
STEP = TypeAdapter(StepTaken)


def principal(store: str, staff: str = "staff-1") -> Principal:
    return Principal(subject=f"u-{staff}", role=Role.STAFF, store_id=store, staff_id=staff)


def noon(days_ago: int = 0) -> datetime:
    """Store-local noon ``days_ago`` days before today: a day's steps stay within it."""
    today = datetime.now(ZoneInfo(ZONE)).date()
    return datetime.combine(today - timedelta(days=days_ago), time(12), ZoneInfo(ZONE))


async def register(session: AsyncSession, store: str, customer: str) -> None:
    file = {"timezone": ZONE, "status": "active", "owner_staff_id": "owner-1", "version": 1}
    event = EventEnvelope(
        type="customer.registered", store_id=store, customer_id=customer, payload={"file": file}
    )
    await handle_events(session, [event])


def stepper(session: AsyncSession, store: str, complaint_id: str) -> Callable[..., Awaitable[Any]]:
    async def take(step: str, at: datetime, **fields: Any) -> service.ComplaintRecord:
        return await service.take_step(
            session,
            principal=principal(store),
            complaint_id=complaint_id,
            step_in=STEP.validate_python({"step": step, **fields}),
            now=at,
            default_timezone=ZONE,
            follow_up_days=2,
        )

    return take


async def open_one(
    session: AsyncSession, store: str, customer: str, at: datetime, category: str = "service"
) -> str:
    record = await service.open_complaint(
        session,
        principal=principal(store),
        complaint_in=ComplaintCreate(
            customer_id=customer, points="the capsules made her dizzy", category=Category(category)
        ),
        now=at,
        default_timezone=ZONE,
    )
    return record.complaint.id


async def refused(take: Awaitable[Any]) -> str:
    with pytest.raises(Conflict) as raised:
        await take
    return raised.value.detail


RESOLVED = {"solution": "exchange for the smaller dose", "compensation": "20.00"}


async def test_the_four_steps_come_in_order_each_once(session: AsyncSession) -> None:
    await register(session, "s1", "c1")
    at = noon()
    take = stepper(session, "s1", await open_one(session, "s1", "c1", at))
    assert "next step is listen" in await refused(take("apologise", at))
    assert "next step is listen" in await refused(take("feedback", at, satisfied=True))
    await take("listen", at, notes="dizzy after two days; wants her money back")
    assert "next step is apologise" in await refused(take("listen", at))
    await take("apologise", at)
    assert "next step is resolve" in await refused(take("feedback", at, satisfied=True))
    await take("resolve", at, cause="took two at once", **RESOLVED)
    record = await take("feedback", at + timedelta(minutes=45), satisfied=True)
    complaint = record.complaint
    assert (complaint.status, complaint.next_step, complaint.round) == ("closed", None, 1)
    assert complaint.closed_at - complaint.opened_at == timedelta(minutes=45)
    assert complaint.resolved_on_the_spot is True
    assert [(s.step, s.round, s.staff_id, s.taken_by) for s in record.steps] == [
        (step, 1, "staff-1", "u-staff-1") for step in ("listen", "apologise", "resolve", "feedback")
    ]
    resolve = record.steps[2]
    assert (resolve.cause, resolve.solution, str(resolve.compensation)) == (
        "took two at once",
        "exchange for the smaller dose",
        "20.00",
    )
    for step, fields in (("listen", {}), ("resolve", RESOLVED), ("feedback", {"satisfied": True})):
        assert "closed" in await refused(take(step, at, **fields))
    tasks = await session.execute(text("SELECT count(*) FROM task WHERE kind = 'complaint'"))
    assert tasks.scalar_one() == 0


async def test_an_unsatisfied_customer_gets_a_second_follow_up_and_round(
    session: AsyncSession,
) -> None:
    await register(session, "s1", "c1")
    opened = noon()
    take = stepper(session, "s1", await open_one(session, "s1", "c1", opened))
    for step in ("listen", "apologise"):
        await take(step, opened)
    await take("resolve", opened, **RESOLVED)
    record = await take("feedback", opened, satisfied=False)
    complaint = record.complaint
    assert (complaint.status, complaint.next_step, complaint.round) == ("open", "resolve", 2)
    task = (
        await session.execute(
            text(
                "SELECT id, kind, status, due_on, assignee_staff_id, method FROM task"
                " WHERE customer_id = 'c1' AND kind = 'complaint'"
            )
        )
    ).one()
    assert task.id == complaint.follow_up_task_id
    assert (task.status, task.due_on, task.assignee_staff_id, task.method) == (
        "open",
        opened.date() + timedelta(days=2),
        "owner-1",
        "home",
    )
    # The second round: a new solution and the customer's answer; the rest was done.
    assert "next step is resolve" in await refused(take("listen", opened))
    assert "next step is resolve" in await refused(take("feedback", opened, satisfied=True))
    later = opened + timedelta(days=1)
    await take("resolve", later, solution="a full refund", compensation="0")
    record = await take("feedback", later, satisfied=True)
    assert (record.complaint.status, record.complaint.resolved_on_the_spot) == ("closed", False)
    assert [(s.step, s.round) for s in record.steps][-2:] == [("resolve", 2), ("feedback", 2)]
    done = await session.execute(
        text("SELECT status, done_by FROM task WHERE id = :t"), {"t": task.id}
    )
    assert tuple(done.one()) == ("done", "staff-1")


async def test_a_complaint_needs_the_points_and_a_known_file_of_the_store(
    session: AsyncSession,
) -> None:
    await register(session, "s1", "c1")
    for points in ("", "   "):
        with pytest.raises(ValidationError):
            ComplaintCreate(customer_id="c1", points=points, category=Category.PRICE)
    with pytest.raises(ValidationError):
        STEP.validate_python({"step": "resolve", "solution": "x", "compensation": "-1.00"})
    with pytest.raises(ValidationError):  # a step takes only its own fields
        STEP.validate_python({"step": "listen", "satisfied": True})
    with pytest.raises(NotFound):
        await open_one(session, "s2", "c1", noon())
    complaint_id = await open_one(session, "s1", "c1", noon())
    with pytest.raises(NotFound):
        await stepper(session, "s2", complaint_id)("listen", noon())
    with pytest.raises(NotFound):
        await service.get_complaint(session, principal=principal("s2"), complaint_id=complaint_id)


async def close_on_the_spot(take: Callable[..., Awaitable[Any]], at: datetime) -> None:
    for step in ("listen", "apologise"):
        await take(step, at)
    await take("resolve", at, **RESOLVED)


async def test_the_stores_statistics_measure_resolution_and_the_spot(
    session: AsyncSession,
) -> None:
    store = "stats-store"
    for customer in ("a", "b", "c", "d"):
        await register(session, store, customer)
    today = noon()
    # a: heard and settled at the counter in half an hour.
    take = stepper(session, store, await open_one(session, store, "a", today))
    await close_on_the_spot(take, today)
    await take("feedback", today + timedelta(minutes=30), satisfied=True)
    # b: opened two days ago, settled today.
    take = stepper(session, store, await open_one(session, store, "b", noon(2), "quality"))
    await close_on_the_spot(take, noon(2))
    await take("feedback", today, satisfied=True)
    # c: unsatisfied at first, settled on the same day by the second round.
    morning = today - timedelta(hours=3)
    take = stepper(session, store, await open_one(session, store, "c", morning, "quality"))
    await close_on_the_spot(take, morning)
    await take("feedback", morning + timedelta(hours=1), satisfied=False)
    await take("resolve", morning + timedelta(hours=2), **RESOLVED)
    await take("feedback", morning + timedelta(hours=2), satisfied=True)
    # d: still open.
    await open_one(session, store, "d", today, "price")
    stats = await complaint_stats(
        session, store_id=store, start=today.date(), end=today.date(), timezone=ZONE
    )
    assert (stats.opened, stats.still_open, stats.closed) == (3, 1, 3)
    assert stats.by_category == {"price": 1, "quality": 1, "service": 1}
    assert (stats.resolved_on_the_spot, stats.on_the_spot_rate) == (1, 0.3333)
    assert stats.mean_resolution_minutes == round((30 + 2 * 24 * 60 + 120) / 3, 1)
    assert stats.median_resolution_minutes == 120.0
    assert stats.second_follow_ups == 1
    earlier = await complaint_stats(
        session, store_id=store, start=noon(2).date(), end=noon(1).date(), timezone=ZONE
    )
    assert (earlier.opened, earlier.closed, earlier.on_the_spot_rate) == (1, 0, None)
    assert earlier.median_resolution_minutes is None


async def test_a_product_or_service_complaint_is_the_stop_reason(session: AsyncSession) -> None:
    for customer in ("p", "q", "s", "o"):
        await register(session, "s1", customer)
    await open_one(session, "s1", "p", noon(1), "product_effect")
    await open_one(session, "s1", "q", noon(1), "quality")
    await open_one(session, "s1", "s", noon(1), "service")
    # A later complaint about the price says nothing of a stop: the product stays the reason.
    await open_one(session, "s1", "p", noon(), "price")
    await open_one(session, "s1", "o", noon(), "other")
    reasons = await stop_reasons(session, customer_ids=["p", "q", "s", "o"])
    assert reasons == {
        "p": StopReason.PRODUCT,
        "q": StopReason.PRODUCT,
        "s": StopReason.SERVICE,
        "o": StopReason.UNKNOWN,
    }
    kept = await session.execute(
        text("SELECT source, source_reason FROM stop_signal WHERE customer_id = 'p'")
    )
    assert tuple(kept.one()) == ("complaint", "product_effect")


async def file_event(session: AsyncSession, type_: str, customer: str, **extra: Any) -> None:
    status = {"customer.erased": "erased", "customer.merged": "merged"}[type_]
    file = {"timezone": ZONE, "status": status, "owner_staff_id": "owner-1", "version": 2}
    event = EventEnvelope(
        type=type_, store_id="s1", customer_id=customer, payload={"file": file, **extra}
    )
    await handle_events(session, [event])


async def test_an_erased_file_takes_the_complaints_words_and_a_merge_moves_them(
    session: AsyncSession,
) -> None:
    for customer in ("gone", "keep", "erased"):
        await register(session, "s1", customer)
    at = noon()
    erased = stepper(session, "s1", await open_one(session, "s1", "erased", at))
    await erased("listen", at, notes="her husband's illness")
    await erased("apologise", at)
    await erased("resolve", at, cause="her knees", **RESOLVED, compensation_note="a scarf")
    moved = await open_one(session, "s1", "gone", at)
    await file_event(session, "customer.erased", "erased")
    await file_event(session, "customer.merged", "gone", merged_into="keep")
    words = await session.execute(
        text("SELECT customer_id, category, points FROM complaint ORDER BY customer_id")
    )
    assert [tuple(r) for r in words] == [
        ("erased", "service", ""),
        ("keep", "service", "the capsules made her dizzy"),
    ]
    steps = await session.execute(
        text(
            "SELECT step, notes, cause, solution, compensation::text, compensation_note"
            " FROM complaint_step ORDER BY taken_at, id"
        )
    )
    assert [tuple(r) for r in steps] == [
        ("listen", "", None, None, None, None),
        ("apologise", "", None, None, None, None),
        ("resolve", "", None, "", "20.00", None),
    ]
    listed = await service.list_complaints(
        session,
        principal=principal("s1"),
        page=PageParams(limit=10, after=None),
        customer_id="keep",
    )
    assert [r.complaint.id for r in listed] == [moved]
