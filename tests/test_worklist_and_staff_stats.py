"""The day's work list (``GET /tasks?assignee=me&due=today``) and staff statistics through the
gateway, signed in as staff members: tasks and visits are written straight into engagement's
database (every kind, day and status a list or a period can hold, relative to today in the
store's time zone), the customers' names come from the customer service, and
``staff.month_closed`` is read back from the real broker."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn, make_engine, make_sessionmaker
from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.ids import new_id
from engagement_service.stats.month_close import close_due_months, previous_month
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_staff,
    create_store,
    sign_in,
    unique,
)

ZONE = ZoneInfo("Asia/Shanghai")
VERSION = 1_000_000


@pytest.fixture
async def engagement_db(stack: LocalStack) -> AsyncIterator[asyncpg.Connection]:
    db = await asyncpg.connect(asyncpg_dsn(stack.database_url("engagement")))
    try:
        yield db
    finally:
        await db.close()


def today() -> date:
    return datetime.now(ZONE).date()


async def add_task(
    db: asyncpg.Connection,
    *,
    store_id: str,
    customer_id: str,
    staff_id: str | None,
    kind: str,
    due_on: date,
    status: str = "open",
    method: str = "phone",
    purpose: str = "问候",
    phase: int | None = None,
    done_on: date | None = None,
    done_by: str | None = None,
    occasion: str | None = None,
    recovery_reason: str | None = None,
) -> str:
    task_id = new_id()
    done_at = None if done_on is None else datetime.combine(done_on, time(15), ZONE)
    await db.execute(
        """
        INSERT INTO task (id, store_id, customer_id, kind, phase, due_on, method, purpose,
                          status, assignee_staff_id, done_at, done_on, done_by, occasion,
                          occasion_on, recovery_reason)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
        """,
        task_id,
        store_id,
        customer_id,
        kind,
        phase,
        due_on,
        method,
        purpose,
        status,
        staff_id,
        done_at,
        done_on,
        done_by if done_by is not None else (staff_id if done_on else None),
        occasion,
        due_on + timedelta(days=3) if occasion else None,
        recovery_reason,
    )
    return task_id


async def set_tier(db: asyncpg.Connection, *, store_id: str, customer_id: str, tier: str) -> None:
    await db.execute(
        """
        INSERT INTO customer_score_seen (customer_id, store_id, version, value_tier)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (customer_id) DO UPDATE SET value_tier = excluded.value_tier
        """,
        customer_id,
        store_id,
        VERSION,
        tier,
    )


async def publish_tier(stack: LocalStack, *, store_id: str, customer_id: str, tier: str) -> None:
    payload = {
        "value_tier": tier,
        "previous_tier": None,
        "ladder_level": "0",
        "previous_ladder_level": None,
        "ladder_score": 0,
        "lifecycle": "new_this_year",
        "previous_lifecycle": None,
        "net_spend_365d": "100.00",
        "cause": "purchase",
        "version": VERSION,
    }
    event = EventEnvelope(
        type="score.changed", store_id=store_id, customer_id=customer_id, payload=payload
    )
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(Topics.SCORES, value=event.to_bytes(), key=event.key)
    finally:
        await producer.stop()


async def staff_client(
    api: httpx.AsyncClient, *, store_id: str, staff_id: str | None, role: str = "staff"
) -> httpx.AsyncClient:
    account = await create_account(api, role=role, store_id=store_id, staff_id=staff_id)
    return client_as(api, token=(await sign_in(api, account))["access_token"])


async def files_copied(db: asyncpg.Connection, customer_ids: list[str]) -> None:
    async def copied() -> bool:
        found = await db.fetchval(
            "SELECT count(*) FROM customer_file WHERE customer_id = ANY($1::text[])",
            customer_ids,
        )
        return bool(found == len(customer_ids))

    await eventually(copied, timeout=60)


async def test_the_days_work_list_in_priority_order_with_names_tiers_and_reasons(
    stack: LocalStack, api: httpx.AsyncClient, engagement_db: asyncpg.Connection
) -> None:
    db = engagement_db
    store = (await create_store(api))["id"]
    other_store = (await create_store(api))["id"]
    me = (await create_staff(api, store_id=store))["id"]
    colleague = (await create_staff(api, store_id=store))["id"]
    names = {"vip": "赵敏", "small": "钱伟", "none": "孙丽", "major": "李强"}
    customers = {
        key: (await create_customer(api, store_id=store, name=name))["id"]
        for key, name in names.items()
    }
    elsewhere = (await create_customer(api, store_id=other_store))["id"]
    await files_copied(db, list(customers.values()))
    for key in ("vip", "small"):
        await set_tier(db, store_id=store, customer_id=customers[key], tier=key)
    # The major customer's tier as scoring publishes it.
    await publish_tier(stack, store_id=store, customer_id=customers["major"], tier="major")

    async def tier_copied() -> bool:
        held = await db.fetchval(
            "SELECT value_tier FROM customer_score_seen WHERE customer_id = $1", customers["major"]
        )
        return bool(held == "major")

    await eventually(tier_copied, timeout=60)
    day = today()

    async def task(key: str, kind: str, due: int, **fields: Any) -> str:
        return await add_task(
            db,
            store_id=fields.pop("store_id", store),
            customer_id=fields.pop("customer_id", None) or customers[key],
            staff_id=fields.pop("staff_id", me),
            kind=kind,
            due_on=day + timedelta(days=due),
            **fields,
        )

    routine_vip = await task("vip", "routine", 0, purpose="例行电话")
    phase_small = await task("small", "follow_up", -3, phase=2, purpose="使用情况")
    recovery = await task("none", "recovery", 0, method="home", recovery_reason="service")
    birthday = await task("major", "special_day", -1, method="message", occasion="birthday")
    phase_vip = await task("vip", "follow_up", 0, phase=1, purpose="使用指导")
    refill = await task("small", "refill", 0, purpose="补货提醒")
    # Not on the list: tomorrow's, a done one, a colleague's, a closed one, another store's.
    await task("vip", "routine", 1)
    await task("vip", "routine", 0, status="done", done_on=day)
    await task("vip", "follow_up", -2, staff_id=colleague, phase=1)
    await task("small", "follow_up", -2, status="closed", phase=3)
    await task("", "recovery", -1, store_id=other_store, customer_id=elsewhere)

    caller = await staff_client(api, store_id=store, staff_id=me)
    try:
        response = await caller.get("/tasks", params={"assignee": "me", "due": "today"})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [t["id"] for t in items] == [
            phase_vip,  # a phase task of a vip
            phase_small,  # a phase task of a small customer, three days overdue
            recovery,  # a recovery task of a customer not classified yet
            routine_vip,
            birthday,  # a major customer's, overdue by a day
            refill,
        ]
        shown = {t["id"]: t for t in items}
        assert [(t["customer_name"], t["value_tier"]) for t in items] == [
            (names["vip"], "vip"),
            (names["small"], "small"),
            (names["none"], None),
            (names["vip"], "vip"),
            (names["major"], "major"),
            (names["small"], "small"),
        ]
        assert shown[recovery]["reason"] == "service"
        assert shown[birthday]["reason"] == "birthday"
        assert shown[phase_small]["reason"] == "使用情况"
        assert shown[phase_small]["status"] == "overdue"
        assert shown[birthday]["status"] == "overdue"
        assert shown[phase_vip]["status"] == "open"

        # Pages of two follow the same order, each after the last one's place in it.
        paged: list[str] = []
        params: dict[str, Any] = {"assignee": "me", "due": "today", "limit": 2}
        while True:
            page = (await caller.get("/tasks", params=params)).json()
            paged += [t["id"] for t in page["items"]]
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]
        assert paged == [t["id"] for t in items]

        bad = await caller.get("/tasks", params={"due": "today", "status": "open"})
        assert bad.status_code == 422, bad.text
    finally:
        await caller.aclose()

    nobody = await staff_client(api, store_id=store, staff_id=None)
    try:
        refused = await nobody.get("/tasks", params={"assignee": "me", "due": "today"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "assignee"
    finally:
        await nobody.aclose()

    # The customer service down: the list still answers, without names.
    caller = await staff_client(api, store_id=store, staff_id=me)
    stack.stop_service("customer")
    try:
        response = await caller.get("/tasks", params={"assignee": "me", "due": "today"})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [t["id"] for t in items][:2] == [phase_vip, phase_small]
        assert len(items) == 6
        assert {t["customer_name"] for t in items} == {None}
        assert items[0]["value_tier"] == "vip"
    finally:
        await caller.aclose()
        stack.start_service("customer")
        stack.wait_healthy("customer")


async def test_the_customer_list_by_ids_names_only_the_callers_files(
    api: httpx.AsyncClient,
) -> None:
    store, other_store = (await create_store(api))["id"], (await create_store(api))["id"]
    wanted = [(await create_customer(api, store_id=store, name=n))["id"] for n in ("周一", "吴二")]
    await create_customer(api, store_id=store, name="郑三")
    theirs = (await create_customer(api, store_id=other_store, name="冯四"))["id"]
    manager = await staff_client(api, store_id=store, staff_id=None, role="store_manager")
    try:
        response = await manager.get("/customers", params={"ids": [*wanted, theirs]})
        assert response.status_code == 200, response.text
        assert sorted(c["id"] for c in response.json()["items"]) == sorted(wanted)
        too_many = await manager.get("/customers", params={"ids": [str(i) for i in range(501)]})
        assert too_many.status_code == 422, too_many.text
    finally:
        await manager.aclose()


def at_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), ZONE)


async def add_visit(
    db: asyncpg.Connection, *, store_id: str, customer_id: str, staff_id: str, method: str, on: date
) -> None:
    await db.execute(
        """
        INSERT INTO visit (id, store_id, customer_id, staff_id, method, occurred_at, outcome,
                           recorded_by)
        VALUES ($1, $2, $3, $4, $5, $6, 'reached', $4)
        """,
        new_id(),
        store_id,
        customer_id,
        staff_id,
        method,
        at_noon(on),
    )


async def test_staff_statistics_over_a_period_and_who_may_read_them(
    api: httpx.AsyncClient, engagement_db: asyncpg.Connection
) -> None:
    db = engagement_db
    store = (await create_store(api))["id"]
    other_store = (await create_store(api))["id"]
    me = (await create_staff(api, store_id=store))["id"]
    colleague = (await create_staff(api, store_id=store))["id"]
    customer = (await create_customer(api, store_id=store))["id"]
    start, end = today() - timedelta(days=40), today() - timedelta(days=11)

    async def task(due: date, status: str = "open", **fields: Any) -> None:
        await add_task(
            db,
            store_id=store,
            customer_id=customer,
            staff_id=fields.pop("staff_id", me),
            kind=fields.pop("kind", "follow_up"),
            due_on=due,
            status=status,
            **fields,
        )

    d = timedelta(days=1)
    await task(start + d, "done", done_on=start + d)  # on time
    await task(start + 2 * d, "done", done_on=start + 5 * d)  # late, within the period
    await task(end - d, "done", done_on=end + 3 * d)  # done after the period: overdue at its end
    await task(start + 3 * d)  # open: overdue
    await task(start + 4 * d, "closed")  # taken away: not counted
    await task(end + 2 * d)  # after the period
    await task(start - d, "done", done_on=start - d)  # before it
    # A care message (a message task done without a visit), on time.
    await task(start + 6 * d, "done", kind="special_day", method="message", done_on=start + 6 * d)
    await task(start + d, "done", staff_id=colleague, done_on=start + d)
    for method in ("phone", "phone", "expert_phone", "home", "in_store"):
        await add_visit(
            db, store_id=store, customer_id=customer, staff_id=me, method=method, on=start + 2 * d
        )
    await add_visit(db, store_id=store, customer_id=customer, staff_id=me, method="phone", on=end)
    await add_visit(
        db, store_id=store, customer_id=customer, staff_id=me, method="home", on=end + d
    )
    await add_visit(
        db, store_id=store, customer_id=customer, staff_id=colleague, method="home", on=start
    )
    period = {"from": start.isoformat(), "to": end.isoformat()}
    expected = {
        "staff_id": me,
        "store_id": store,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "visits": 6,
        "calls": 4,
        "home_visits": 1,
        "messages": 1,
        "done_on_time": 2,
        "done_late": 1,
        "overdue": 2,
        "tasks_due": 5,
        "completion_rate": 0.6,
    }

    mine = await staff_client(api, store_id=store, staff_id=me)
    theirs = await staff_client(api, store_id=store, staff_id=colleague)
    manager = await staff_client(api, store_id=store, staff_id=None, role="store_manager")
    other_manager = await staff_client(
        api, store_id=other_store, staff_id=None, role="store_manager"
    )
    try:
        own = await mine.get(f"/staff/{me}/stats", params=period)
        assert own.status_code == 200, own.text
        assert own.json() == expected
        assert (await theirs.get(f"/staff/{me}/stats", params=period)).status_code == 403
        by_manager = await manager.get(f"/staff/{me}/stats", params=period)
        assert by_manager.status_code == 200, by_manager.text
        assert by_manager.json() == expected
        assert (await api.get(f"/staff/{me}/stats", params=period)).json() == expected
        assert (await other_manager.get(f"/staff/{me}/stats", params=period)).status_code == 404

        store_wide = await manager.get(f"/stores/{store}/staff-stats", params=period)
        assert store_wide.status_code == 200, store_wide.text
        rows = {r["staff_id"]: r for r in store_wide.json()["items"]}
        assert rows[me] == expected
        assert (rows[colleague]["done_on_time"], rows[colleague]["visits"]) == (1, 1)
        assert rows[colleague]["completion_rate"] == 1.0
        assert (await mine.get(f"/stores/{store}/staff-stats", params=period)).status_code == 403
        elsewhere = await other_manager.get(f"/stores/{store}/staff-stats", params=period)
        assert elsewhere.status_code == 404

        backwards = await mine.get(
            f"/staff/{me}/stats", params={"from": end.isoformat(), "to": start.isoformat()}
        )
        assert backwards.status_code == 422, backwards.text
        too_long = await mine.get(
            f"/staff/{me}/stats",
            params={"from": (end - timedelta(days=400)).isoformat(), "to": end.isoformat()},
        )
        assert too_long.status_code == 422, too_long.text
    finally:
        for client in (mine, theirs, manager, other_manager):
            await client.aclose()


async def month_closed_events(stack: LocalStack, store_id: str) -> list[EventEnvelope]:
    """Every ``staff.month_closed`` of ``store_id`` on the topic, read until it goes quiet."""
    consumer = AIOKafkaConsumer(
        Topics.ENGAGEMENT,
        bootstrap_servers=stack.broker.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[EventEnvelope] = []
    try:
        quiet = 0
        while quiet < 6:
            batches = await consumer.getmany(timeout_ms=500)
            records = [r for batch in batches.values() for r in batch]
            quiet = 0 if records else quiet + 1
            for record in records:
                event = EventEnvelope.from_bytes(record.value)
                if event.type == "staff.month_closed" and event.store_id == store_id:
                    found.append(event)
    finally:
        await consumer.stop()
    return found


async def test_last_months_completion_is_published_once_per_staff_member(
    stack: LocalStack, engagement_db: asyncpg.Connection
) -> None:
    db = engagement_db
    store, first, second = unique("store"), unique("staff"), unique("staff")
    month_start, month_end = previous_month(today())
    customer = unique("c")

    async def task(staff: str, due: date, status: str = "open", done: date | None = None) -> None:
        await add_task(
            db,
            store_id=store,
            customer_id=customer,
            staff_id=staff,
            kind="follow_up",
            due_on=due,
            status=status,
            done_on=done,
        )

    async with db.transaction():
        await task(first, month_start, "done", month_start)  # on time
        await task(first, month_start + timedelta(days=2), "done", month_end)  # late
        await task(first, month_end, "done", month_end)  # on time
        await task(first, month_end - timedelta(days=1))  # overdue
        await task(first, month_end, "closed")  # not counted
        await task(second, month_start + timedelta(days=5), "done", month_start)  # on time
        await task(second, month_end + timedelta(days=1))  # this month's: not counted

    engine = make_engine(stack.database_url("engagement"), pool_size=2)
    try:
        sessionmaker = make_sessionmaker(engine)
        # The service's own job may close the month too: whoever comes first, once.
        for _ in range(2):
            await close_due_months(
                sessionmaker, now=datetime.now(UTC), default_timezone="Asia/Shanghai"
            )
    finally:
        await engine.dispose()

    async def published() -> list[EventEnvelope] | None:
        found = await month_closed_events(stack, store)
        return found if len(found) >= 2 else None

    events = await eventually(published, timeout=60)
    await asyncio.sleep(2)
    events = await month_closed_events(stack, store)
    by_staff = {e.payload["staff_id"]: e.payload for e in events}
    assert len(events) == 2 and set(by_staff) == {first, second}
    month = month_start.strftime("%Y-%m")
    assert by_staff[first] == {
        "staff_id": first,
        "store_id": store,
        "month": month,
        "tasks_due": 4,
        "done_on_time": 2,
        "done_late": 1,
        "overdue": 1,
        "completion_rate": 0.75,
    }
    assert (by_staff[second]["tasks_due"], by_staff[second]["completion_rate"]) == (1, 1.0)
    assert {e.customer_id for e in events} == {first, second}
