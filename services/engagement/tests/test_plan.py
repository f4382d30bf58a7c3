"""The five-phase plan as DOMAIN.md §4 has it, on PostgreSQL: its days in the store's calendar,
methods as data, phase 3 a home visit after two calls, the plan's end by its last phase (routine
care) or by a refund of its product, and redelivered events changing nothing."""

import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import EventEnvelope
from crm_libs.principal import Principal, Role
from crm_libs.problems import Conflict
from engagement_service.followups import task_operations
from engagement_service.followups.methods import Method
from engagement_service.followups.phases import FOLLOW_UP_PHASES, schedule_phases
from engagement_service.handlers import handle_events
from engagement_service.visits import service as visits
from engagement_service.visits.schemas import VisitCreate

STORE = "s1"
ZONE = "Asia/Shanghai"
MANAGER = Principal(subject="m1", role=Role.STORE_MANAGER, store_id=STORE)


def test_methods_are_data() -> None:
    assert [(p.number, p.day) for p in FOLLOW_UP_PHASES] == [
        (1, 3),
        (2, 7),
        (3, 14),
        (4, 21),
        (5, 28),
    ]
    for phase in FOLLOW_UP_PHASES:
        assert isinstance(phase.method, Method) and phase.method in phase.methods_allowed
        assert all(isinstance(m, Method) for m in phase.methods_allowed)
    assert {m.value for m in Method} == {"phone", "home", "in_store", "message", "expert_phone"}
    assert FOLLOW_UP_PHASES[3].methods_allowed == (Method.HOME, Method.EXPERT_PHONE)


@pytest.mark.parametrize("year", [2027, 2028])  # February of 28 days, then of 29
def test_a_plan_counts_its_days_across_the_end_of_february(year: int) -> None:
    due = [d for _, d in schedule_phases(date(year, 1, 29))]
    assert due == [
        date(year, 2, 1),
        date(year, 2, 5),
        date(year, 2, 12),
        date(year, 2, 19),
        date(year, 2, 26),
    ]
    march = 7 if year % 4 else 6
    due = [d for _, d in schedule_phases(date(year, 2, 14))]
    assert due[2:] == [date(year, 2, 28), date(year, 3, march), date(year, 3, march + 7)]


def registered(customer: str, *, owner: str | None = "owner-1") -> EventEnvelope:
    file = {"timezone": ZONE, "status": "active", "owner_staff_id": owner, "version": 1}
    return EventEnvelope(
        type="customer.registered", store_id=STORE, customer_id=customer, payload={"file": file}
    )


def bought(customer: str, purchase_id: str, *skus: str, on: date) -> EventEnvelope:
    return EventEnvelope(
        type="purchase.recorded",
        store_id=STORE,
        customer_id=customer,
        payload={
            "purchase_id": purchase_id,
            "purchased_on": on.isoformat(),
            "timezone": ZONE,
            "staff_id": "seller",
            "lines": [{"sku": sku, "qty": 1} for sku in skus],
        },
    )


def refunded(customer: str, purchase_id: str, *skus: str, on: date) -> EventEnvelope:
    return EventEnvelope(
        type="purchase.refunded",
        store_id=STORE,
        customer_id=customer,
        payload={
            "purchase_id": purchase_id,
            "refund_id": f"r-{purchase_id}",
            "reason": "changed mind",
            "refunded_on": on.isoformat(),
            "timezone": ZONE,
            "lines": [{"sku": sku, "qty": 1} for sku in skus],
        },
    )


async def tasks_of(session: AsyncSession, customer: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text("SELECT * FROM task WHERE customer_id = :c ORDER BY sku, phase, id"), {"c": customer}
    )
    return [dict(r._mapping) for r in rows]


async def everything(session: AsyncSession) -> list[Any]:
    """Every row engagement's plans, tasks and routine care hold, to compare before and after."""
    found = []
    for table in ("follow_up_plan", "task", "customer_care", "product_bought"):
        rows = await session.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))  # noqa: S608
        found.append([tuple(r) for r in rows])
    return found


async def test_a_plan_is_made_of_methods_and_goes_to_the_owner(session: AsyncSession) -> None:
    on = date.today() - timedelta(days=1)
    await handle_events(session, [registered("c1"), bought("c1", "p1", "A", on=on)])
    tasks = await tasks_of(session, "c1")
    assert [(t["phase"], t["method"], t["methods_allowed"]) for t in tasks] == [
        (1, "home", ["home", "phone"]),
        (2, "home", ["home", "phone"]),
        (3, "phone", ["phone", "home"]),
        (4, "home", ["home", "expert_phone"]),
        (5, "home", ["home", "expert_phone"]),
    ]
    assert {t["assignee_staff_id"] for t in tasks} == {"owner-1"}


async def visit_doing(
    session: AsyncSession, task: dict[str, Any], method: Method, *, days_late: int = 0
) -> None:
    occurred_at = datetime.combine(task["due_on"], datetime.min.time(), UTC) + timedelta(
        days=days_late, hours=2
    )
    await visits.record_visit(
        session,
        principal=MANAGER,
        visit_in=VisitCreate(
            customer_id=task["customer_id"],
            staff_id="owner-1",
            method=method,
            occurred_at=occurred_at,
            outcome="done",
            task_id=task["id"],
        ),
        now=datetime.now(UTC) + timedelta(days=60),  # the plan's days lie ahead of the clock
        clock_skew=timedelta(0),
        default_timezone=ZONE,
    )


async def test_two_calls_make_phase_3_a_home_visit(session: AsyncSession) -> None:
    on = date.today()
    await handle_events(
        session,
        [registered("c1"), registered("c2"), registered("c3")]
        + [bought(c, f"p-{c}", "A", on=on) for c in ("c1", "c2", "c3")],
    )
    # c1: phone, phone. c2: phone, then a home visit. c3: one call, phase 2 still open.
    for customer, methods in (
        ("c1", [Method.PHONE] * 2),
        ("c2", [Method.PHONE, Method.HOME]),
        ("c3", [Method.PHONE]),
    ):
        tasks = await tasks_of(session, customer)
        for task, method in zip(tasks, methods, strict=False):
            await visit_doing(session, task, method)
    third = {c: (await tasks_of(session, c))[2] for c in ("c1", "c2", "c3")}
    assert (third["c1"]["method"], third["c1"]["methods_allowed"]) == ("home", ["home"])
    for customer in ("c2", "c3"):
        assert (third[customer]["method"], third[customer]["methods_allowed"]) == (
            "phone",
            ["phone", "home"],
        )
    # Completing phase 2 a second time is refused (409), and changes nothing.
    with pytest.raises(Conflict):
        await visit_doing(session, (await tasks_of(session, "c2"))[1], Method.PHONE)


async def test_the_last_phase_done_completes_the_plan_and_moves_to_routine_care(
    session: AsyncSession,
) -> None:
    on = date.today()
    await handle_events(session, [registered("c1"), bought("c1", "p1", "A", "B", on=on)])
    tasks = await tasks_of(session, "c1")
    a_tasks = [t for t in tasks if t["sku"] == "A"]
    # Phase 4 never done; phase 5 done two days late (its day in Shanghai is still the due day
    # at 02:00 UTC: 10:00 there).
    for task in a_tasks[:3]:
        await visit_doing(session, task, Method.HOME)
    await visit_doing(session, a_tasks[4], Method.HOME, days_late=2)
    plans = dict((await session.execute(text("SELECT sku, status FROM follow_up_plan"))).all())
    assert plans == {"A": "completed", "B": "open"}
    care = (await session.execute(text("SELECT * FROM customer_care"))).one()._mapping
    assert (care["customer_id"], care["routine_since"]) == (
        "c1",
        a_tasks[4]["due_on"] + timedelta(days=2),
    )
    done = await tasks_of(session, "c1")
    assert [
        (t["status"], t["done_on"] is not None and t["done_on"] <= t["due_on"]) for t in done[:5]
    ] == [("done", True), ("done", True), ("done", True), ("open", False), ("done", False)]


async def test_a_refund_closes_its_products_plan_and_redeliveries_change_nothing(
    session: AsyncSession,
) -> None:
    on = date.today() - timedelta(days=4)
    first = [registered("c1"), bought("c1", "p1", "A", "B", on=on)]
    await handle_events(session, first)
    await task_operations.complete(
        session,
        principal=MANAGER,
        task_id=(await tasks_of(session, "c1"))[0]["id"],
        done_at=datetime.now(UTC),
        default_timezone=ZONE,
    )
    # A repeat purchase of A starts nothing; the refund of A from p1 closes A's plan only; a
    # refund of B from another purchase (the repeat) leaves B's plan open.
    later = [
        bought("c1", "p2", "A", "B", on=on + timedelta(days=1)),
        refunded("c1", "p1", "A", on=on + timedelta(days=2)),
        refunded("c1", "p2", "B", on=on + timedelta(days=2)),
    ]
    await handle_events(session, later)
    tasks = await tasks_of(session, "c1")
    assert [(t["sku"], t["phase"], t["status"], t["closed_reason"]) for t in tasks] == [
        ("A", 1, "done", None),
        *[("A", n, "closed", "refunded") for n in range(2, 6)],
        *[("B", n, "open", None) for n in range(1, 6)],
    ]
    plans = await session.execute(
        text("SELECT sku, status, closed_reason, ended_on FROM follow_up_plan ORDER BY sku")
    )
    assert [tuple(p) for p in plans] == [
        ("A", "closed", "refunded", on + timedelta(days=2)),
        ("B", "open", None, None),
    ]
    held = await everything(session)
    await handle_events(session, first + later)
    await handle_events(session, later)
    assert await everything(session) == held


def _migrate(url: str, revision: str) -> None:
    code = (
        "import sys; from pathlib import Path; import engagement_service.migrate as m;"
        "from crm_libs.migrations import upgrade;"
        "upgrade(Path(m.__file__).parent / 'migrations', sys.argv[1], sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, url, revision], check=True, env=dict(os.environ))


async def test_the_migration_turns_prose_methods_into_data(stack: LocalStack) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"
    stack.postgres.create_database(name)
    url = stack.postgres.url(name)
    _migrate(url, "0003")
    conn = await asyncpg.connect(stack.postgres.url(name, driver="postgresql"))
    try:
        prose = [
            "home_visit_or_phone",
            "phone_or_home_visit_home_preferred",
            "phone_or_home_visit_home_if_1_and_2_by_phone",
            "staff_home_visit_and_or_expert_phone",
            "staff_home_visit_and_or_expert_phone",
        ]
        for phase, method in enumerate(prose, 1):
            await conn.execute(
                "INSERT INTO task (id, store_id, customer_id, plan_id, kind, phase, sku, due_on,"
                " method, purpose)"
                " VALUES ($1, 's', 'c', 'p', 'follow_up', $2, 'A', now(), $3, 'x')",
                f"t{phase}",
                phase,
                method,
            )
        _migrate(url, "0004")
        rows = await conn.fetch("SELECT phase, method, methods_allowed FROM task ORDER BY phase")
    finally:
        await conn.close()
    assert [(r["method"], r["methods_allowed"]) for r in rows] == [
        (p.method.value, [m.value for m in p.methods_allowed]) for p in FOLLOW_UP_PHASES
    ]
