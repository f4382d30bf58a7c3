"""A visit's stop reason as the customer's newest stop signal, beside refunds and complaints, and
recovery in steps (a competitor: the review with the manager, then the owner's visit), on a real,
migrated PostgreSQL. Days are the store's (Asia/Shanghai), relative to today."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from crm_libs.pagination import PageParams
from crm_libs.principal import Principal, Role
from engagement_service.followups import task_operations
from engagement_service.followups.methods import Method
from engagement_service.handlers import handle_events
from engagement_service.visits import service as visits
from engagement_service.visits.schemas import VisitCreate, VisitStopReason

STORE = "s1"
ZONE = "Asia/Shanghai"
STAFF = Principal(subject="u1", role=Role.STAFF, store_id=STORE, staff_id="owner-1")
MANAGER = Principal(subject="u2", role=Role.STORE_MANAGER, store_id=STORE, staff_id="manager-1")


def today() -> date:
    return datetime.now(ZoneInfo(ZONE)).date()


def registered(customer: str, *, owner: str = "owner-1", version: int = 1) -> EventEnvelope:
    file = {"timezone": ZONE, "status": "active", "owner_staff_id": owner, "version": version}
    return EventEnvelope(
        type="customer.registered",
        store_id=STORE,
        customer_id=customer,
        payload={"file": file},
    )


def stopped(customer: str) -> EventEnvelope:
    return EventEnvelope(
        type="score.changed",
        store_id=STORE,
        customer_id=customer,
        payload={
            "value_tier": "small",
            "previous_tier": "small",
            "ladder_level": "0",
            "previous_ladder_level": "0",
            "ladder_score": 0,
            "lifecycle": "stopped",
            "previous_lifecycle": "active_core",
            "net_spend_365d": "100.00",
            "cause": "ageing",
            "version": 1,
        },
    )


def refunded(customer: str, *, reason: str, at: datetime) -> EventEnvelope:
    return EventEnvelope(
        type="purchase.refunded",
        store_id=STORE,
        customer_id=customer,
        payload={
            "purchase_id": f"p-{customer}",
            "refund_id": f"r-{customer}",
            "reason": reason,
            "refunded_at": at.isoformat(),
            "refunded_on": at.astimezone(ZoneInfo(ZONE)).date().isoformat(),
            "lines": [{"sku": "SKU-1", "qty": 1}],
        },
    )


async def log_visit(
    session: AsyncSession, customer: str, *, at: datetime, stop_reason: VisitStopReason | None
) -> str:
    visit = await visits.record_visit(
        session,
        principal=STAFF,
        visit_in=VisitCreate(
            customer_id=customer,
            method=Method.HOME,
            occurred_at=at,
            outcome="buys elsewhere now",
            stop_reason=stop_reason,
        ),
        now=datetime.now(UTC),
        clock_skew=timedelta(seconds=300),
        default_timezone=ZONE,
    )
    return visit.id


async def recovery_tasks(session: AsyncSession, customer: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            """
            SELECT id, status, recovery_reason, recovery_step, with_manager, method, due_on,
                   assignee_staff_id
            FROM task WHERE customer_id = :c AND kind = 'recovery' ORDER BY recovery_step
            """
        ),
        {"c": customer},
    )
    return [dict(r._mapping) for r in rows]


async def signal_of(session: AsyncSession, customer: str) -> tuple[str, str, str] | None:
    row = await session.execute(
        text("SELECT reason, source, source_reason FROM stop_signal WHERE customer_id = :c"),
        {"c": customer},
    )
    found = row.one_or_none()
    return None if found is None else (found.reason, found.source, found.source_reason)


async def test_a_visit_naming_a_competitor_gives_the_review_then_the_owners_visit(
    session: AsyncSession,
) -> None:
    await handle_events(session, [registered("c1")])
    visit_id = await log_visit(
        session,
        "c1",
        at=datetime.now(UTC) - timedelta(hours=1),
        stop_reason=VisitStopReason.COMPETITOR,
    )
    assert await signal_of(session, "c1") == ("competitor", "visit", "competitor")
    shown = await visits.list_visits(
        session, principal=STAFF, page=PageParams(limit=50, after=None), customer_id="c1"
    )
    assert [(v.id, v.stop_reason) for v in shown] == [(visit_id, "competitor")]

    await handle_events(session, [stopped("c1")])
    [review] = await recovery_tasks(session, "c1")
    assert (
        review["status"],
        review["recovery_reason"],
        review["recovery_step"],
        review["with_manager"],
        review["due_on"],
        review["assignee_staff_id"],
    ) == ("open", "competitor", 1, True, today() + timedelta(days=3), "owner-1")

    # The owner changed meanwhile: the visit goes to the new one.
    await handle_events(session, [registered("c1", owner="owner-2", version=2)])
    await task_operations.complete(
        session,
        principal=MANAGER,
        task_id=review["id"],
        done_at=datetime.now(UTC),
        default_timezone=ZONE,
    )
    done, visit = await recovery_tasks(session, "c1")
    assert done["status"] == "done"
    assert (
        visit["status"],
        visit["recovery_reason"],
        visit["recovery_step"],
        visit["with_manager"],
        visit["method"],
        visit["due_on"],
        visit["assignee_staff_id"],
    ) == ("open", "competitor", 2, False, "home", today() + timedelta(days=3), "owner-2")

    # The visit done is the last step: nothing follows.
    await task_operations.complete(
        session,
        principal=MANAGER,
        task_id=visit["id"],
        done_at=datetime.now(UTC),
        default_timezone=ZONE,
    )
    assert [t["status"] for t in await recovery_tasks(session, "c1")] == ["done", "done"]


async def test_a_one_step_reason_done_opens_nothing_more(session: AsyncSession) -> None:
    await handle_events(session, [registered("c1")])
    await log_visit(session, "c1", at=datetime.now(UTC), stop_reason=VisitStopReason.QUALITY)
    await handle_events(session, [stopped("c1")])
    [task] = await recovery_tasks(session, "c1")
    assert (task["recovery_reason"], task["method"], task["recovery_step"]) == (
        "product",
        "expert_phone",
        1,
    )
    await task_operations.complete(
        session,
        principal=MANAGER,
        task_id=task["id"],
        done_at=datetime.now(UTC),
        default_timezone=ZONE,
    )
    assert [t["status"] for t in await recovery_tasks(session, "c1")] == ["done"]


@pytest.mark.parametrize(
    ("refund_hours_ago", "visit_hours_ago", "reason"),
    [
        (1, 2, "product"),  # the refund after the visit replaces the visit's reason
        (2, 1, "competitor"),  # the visit after the refund replaces the refund's
    ],
)
async def test_the_newer_of_a_visit_and_a_refund_decides(
    session: AsyncSession, refund_hours_ago: int, visit_hours_ago: int, reason: str
) -> None:
    now = datetime.now(UTC)
    await handle_events(session, [registered("c1")])
    await log_visit(
        session,
        "c1",
        at=now - timedelta(hours=visit_hours_ago),
        stop_reason=VisitStopReason.COMPETITOR,
    )
    await handle_events(
        session, [refunded("c1", reason="quality", at=now - timedelta(hours=refund_hours_ago))]
    )
    await handle_events(session, [stopped("c1")])
    [task] = await recovery_tasks(session, "c1")
    assert task["recovery_reason"] == reason


@pytest.mark.parametrize("said", [VisitStopReason.PRICE, VisitStopReason.OTHER, None])
async def test_a_visit_saying_nothing_of_a_stop_keeps_the_reason_before(
    session: AsyncSession, said: VisitStopReason | None
) -> None:
    now = datetime.now(UTC)
    await handle_events(session, [registered("c1")])
    await handle_events(
        session, [refunded("c1", reason="pushed_too_hard", at=now - timedelta(hours=2))]
    )
    await log_visit(session, "c1", at=now, stop_reason=said)
    assert await signal_of(session, "c1") == ("service", "refund", "pushed_too_hard")
