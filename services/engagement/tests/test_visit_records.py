"""Visits as the file's history in engagement: ``visit.recorded`` staged with the visit, erasure
taking the staff's words away, a merge moving visits and routine care to the survivor."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from crm_libs.principal import Principal, Role
from engagement_service.followups.methods import Method
from engagement_service.handlers import handle_events
from engagement_service.visits import service as visits
from engagement_service.visits.schemas import NextStep, VisitCreate

STORE = "s1"
STAFF = Principal(subject="u1", role=Role.STAFF, store_id=STORE, staff_id="owner-1")


def file_event(type_: str, customer: str, version: int, **extra: Any) -> EventEnvelope:
    status = {"customer.erased": "erased", "customer.merged": "merged"}.get(type_, "active")
    file = {"timezone": "Asia/Shanghai", "status": status, "owner_staff_id": "owner-1"}
    return EventEnvelope(
        type=type_,
        store_id=STORE,
        customer_id=customer,
        payload={"file": file | {"version": version}, **extra},
    )


async def log_visit(session: AsyncSession, customer: str, **fields: Any) -> str:
    visit = await visits.record_visit(
        session,
        principal=STAFF,
        visit_in=VisitCreate(
            customer_id=customer,
            method=Method.HOME,
            occurred_at=datetime.now(UTC),
            outcome="uses it daily",
            notes="knee pain better; daughter visits Sundays",
            **fields,
        ),
        now=datetime.now(UTC),
        clock_skew=timedelta(seconds=300),
        default_timezone="Asia/Shanghai",
    )
    return visit.id


async def test_a_visit_stages_its_event_with_the_collected_fields(session: AsyncSession) -> None:
    await handle_events(session, [file_event("customer.registered", "c1", 1)])
    visit_id = await log_visit(session, "c1", collected={"deep": {"hobbies": ["下棋"]}})
    staged = await session.execute(
        text("SELECT topic, key, envelope FROM outbox_event WHERE envelope->>'type' = :t"),
        {"t": "visit.recorded"},
    )
    [(topic, key, envelope)] = staged.all()
    assert (topic, key, envelope["customer_id"]) == ("crm.engagement.v1", "c1", "c1")
    payload = envelope["payload"]
    assert set(payload) == {
        "visit_id",
        "staff_id",
        "occurred_at",
        "collected",
        "method",
        "reached",
    }
    assert (payload["method"], payload["reached"]) == ("home", True)
    assert (payload["visit_id"], payload["staff_id"]) == (visit_id, "owner-1")
    assert payload["collected"] == {"deep": {"hobbies": ["下棋"]}}
    assert datetime.fromisoformat(payload["occurred_at"]).tzinfo is not None


async def test_erasure_takes_the_staffs_words_and_keeps_the_count(session: AsyncSession) -> None:
    await handle_events(session, [file_event("customer.registered", "c1", 1)])
    step = NextStep(note="call her daughter about the knee", due_on=date.today() + timedelta(3))
    await log_visit(session, "c1", collected={"ethnicity": "汉族"}, next_step=step)
    await handle_events(session, [file_event("customer.erased", "c1", 2)])
    rows = await session.execute(
        text("SELECT staff_id, method, outcome, notes, collected, next_step FROM visit")
    )
    assert [tuple(r) for r in rows] == [("owner-1", "home", "", "", {}, None)]
    purpose = await session.execute(
        text("SELECT status, purpose FROM task WHERE kind = 'follow_up'")
    )
    assert [tuple(r) for r in purpose] == [("closed", "")]


async def test_a_merge_moves_visits_and_routine_care_to_the_survivor(
    session: AsyncSession,
) -> None:
    await handle_events(
        session,
        [file_event("customer.registered", c, 1) for c in ("keep", "gone")],
    )
    await log_visit(session, "gone")
    await session.execute(
        text(
            "INSERT INTO customer_care (customer_id, store_id, routine_since, plan_id) VALUES"
            " ('gone', :s, :early, 'p1'), ('keep', :s, :late, 'p2')"
        ),
        {"s": STORE, "early": date(2026, 3, 1), "late": date(2026, 5, 1)},
    )
    await handle_events(session, [file_event("customer.merged", "gone", 2, merged_into="keep")])
    moved = await session.execute(text("SELECT customer_id FROM visit"))
    assert moved.scalars().all() == ["keep"]
    care = await session.execute(text("SELECT customer_id, routine_since FROM customer_care"))
    assert [tuple(r) for r in care] == [("keep", date(2026, 3, 1))]
