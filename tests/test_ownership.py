"""Reassignment (孤单流转, DOMAIN.md §9) end to end through the gateway, on the real broker: a
departure's orphans to the most recent seller within a year or the pool, the engagement tasks
following the new owner, the pool's rules at their edges (a month worked, 80 % and 50 % last
month from engagement's ``staff.month_closed``), the yearly take-back (5 % and 30 %), a
customer's transfer, the 90-day rule's third change refused, and the daily inactivity job."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import text

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.events.event_types import STAFF_MONTH_CLOSED
from customer_service.ownership import inactivity, pool
from customer_service.ownership.rules import add_months
from tests.broker import publish
from tests.builders import (
    caller_as,
    client_as,
    create_customer,
    create_product,
    create_store,
    days_ago,
    record_purchase,
)

ZONE = "Asia/Shanghai"


def local_today() -> date:
    return datetime.now(ZoneInfo(ZONE)).date()


async def staff_member(
    api: httpx.AsyncClient, store_id: str, *, hired_on: date | None = None, role: str = "staff"
) -> str:
    body: dict[str, Any] = {"store_id": store_id, "name": "李娜", "role": role}
    if hired_on is not None:
        body["hired_on"] = hired_on.isoformat()
    response = await api.post("/staff", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def owned_file(api: httpx.AsyncClient, store_id: str, owner: str) -> str:
    return str((await create_customer(api, store_id=store_id, owner_staff_id=owner))["id"])


async def sale(
    api: httpx.AsyncClient, customer_id: str, sku: str, *, staff_id: str, days: float
) -> None:
    await record_purchase(
        api, customer_id=customer_id, sku=sku, staff_id=staff_id, purchased_at=days_ago(days)
    )


async def ownership(api: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    response = await api.get(f"/customers/{customer_id}/ownership")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def depart(api: httpx.AsyncClient, staff_id: str, reason: str = "left") -> dict[str, Any]:
    response = await api.post(f"/staff/{staff_id}/departure", json={"reason": reason})
    assert response.status_code == 200, response.text
    counts: dict[str, Any] = response.json()
    return counts


async def pool_ids(api: httpx.AsyncClient, store_id: str) -> set[str]:
    found: set[str] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get(f"/stores/{store_id}/pool", params=params)).json()
        found |= {item["customer_id"] for item in page["items"]}
        if not (cursor := page["next_cursor"]):
            return found


async def close_months(stack: LocalStack, store_id: str, rates: dict[str, str]) -> None:
    """Engagement's ``staff.month_closed`` for last month (store-local), one per staff member."""
    month = add_months(local_today().replace(day=1), -1).strftime("%Y-%m")
    closed = [
        EventEnvelope(
            type=STAFF_MONTH_CLOSED,
            store_id=store_id,
            customer_id=staff_id,
            payload={
                "staff_id": staff_id,
                "store_id": store_id,
                "month": month,
                "tasks_due": 10000,
                "done_on_time": 0,
                "done_late": 0,
                "overdue": 0,
                "completion_rate": float(rate),
            },
        )
        for staff_id, rate in rates.items()
    ]
    await publish(stack, Topics.ENGAGEMENT, *closed)


async def assign(
    api: httpx.AsyncClient, store_id: str, staff_id: str, ids: list[str], **extra: Any
) -> httpx.Response:
    return await api.post(
        f"/stores/{store_id}/pool/assignments",
        json={"staff_id": staff_id, "customer_ids": ids, **extra},
    )


async def assigned_once_known(
    api: httpx.AsyncClient, store_id: str, staff_id: str, ids: list[str], **extra: Any
) -> httpx.Response:
    """The assignment's answer once the staff member's month close has been consumed."""

    async def answer() -> httpx.Response | None:
        response = await assign(api, store_id, staff_id, ids, **extra)
        if response.status_code == 409 and "completion_rate_last_month_known" in response.text:
            return None
        return response

    return await eventually(answer)


async def pooled_files(api: httpx.AsyncClient, store_id: str, count: int) -> list[str]:
    """``count`` files in the store's pool: their owner left, and nobody sold to them."""
    leaving = await staff_member(api, store_id)
    ids = [await owned_file(api, store_id, leaving) for _ in range(count)]
    assert await depart(api, leaving) == {"reassigned": 0, "to_pool": count}
    return ids


async def test_a_departure_gives_each_file_to_its_recent_seller_else_to_the_pool_and_tasks_follow(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = (await create_store(api, timezone=ZONE))["id"]
    sku = (await create_product(api))["sku"]
    leaving, b, c, gone = [await staff_member(api, store) for _ in range(4)]
    within, beyond, latest, active_only = [await owned_file(api, store, leaving) for _ in range(4)]
    await sale(api, within, sku, staff_id=b, days=364)
    await sale(api, beyond, sku, staff_id=b, days=366)
    # The most recent seller wins; the departing staff member's own sale does not count.
    await sale(api, latest, sku, staff_id=b, days=100)
    await sale(api, latest, sku, staff_id=c, days=10)
    await sale(api, latest, sku, staff_id=leaving, days=1)
    # A seller no longer active is passed over for an older active one.
    await sale(api, active_only, sku, staff_id=b, days=200)
    await sale(api, active_only, sku, staff_id=gone, days=5)
    await depart(api, gone)

    async def tasks_of(customer_id: str) -> list[dict[str, Any]]:
        found = await api.get("/tasks", params={"customer_id": customer_id, "status": "open"})
        items: list[dict[str, Any]] = found.json()["items"]
        return items

    # The recent sale's follow-up plan is on the departing owner's list first.
    assert await eventually(lambda: _all_assigned(tasks_of, latest, leaving), timeout=60)

    manager = await caller_as(api, "store_manager", store_id=store)
    async with manager:
        departed = await manager.post(
            f"/staff/{leaving}/departure", json={"reason": "moved", "note": "to the east store"}
        )
        assert departed.status_code == 200, departed.text
        assert departed.json() == {"reassigned": 3, "to_pool": 1}
        expected = {within: b, beyond: None, latest: c, active_only: b}
        for customer_id, owner in expected.items():
            found = await ownership(manager, customer_id)
            assert found["owner_staff_id"] == owner
            first, last = found["history"]
            assert (first["kind"], first["to_staff_id"]) == ("registered", leaving)
            assert last["kind"] == "departure" and last["reason"] == "moved: to the east store"
            assert (last["from_staff_id"], last["to_staff_id"]) == (leaving, owner)
            assert last["by"] and last["change_of_hands"] is (owner is not None)
            assert (found["in_pool_since"] is None) is (owner is not None)
        assert await pool_ids(manager, store) == {beyond}
        assert (await manager.get(f"/staff/{leaving}")).json()["status"] == "left"
        assert (await manager.get(f"/customers/{latest}")).json()["owner_staff_id"] == c
        # Departed already: nothing left to move.
        again = await manager.post(f"/staff/{leaving}/departure", json={"reason": "left"})
        assert again.json() == {"reassigned": 0, "to_pool": 0}
    # Engagement moved the open tasks to the new owner (customer.updated with owner_staff_id).
    assert await eventually(lambda: _all_assigned(tasks_of, latest, c), timeout=60)


async def _all_assigned(tasks_of: Any, customer_id: str, staff_id: str) -> bool:
    tasks = await tasks_of(customer_id)
    return bool(tasks) and all(t["assignee_staff_id"] == staff_id for t in tasks)


async def test_the_third_change_of_hands_within_90_days_is_refused_naming_the_rule(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = (await create_store(api, timezone=ZONE))["id"]
    other_store = (await create_store(api, timezone=ZONE))["id"]
    a, b, c = [await staff_member(api, store) for _ in range(3)]
    foreign = await staff_member(api, other_store)
    customer = await owned_file(api, store, a)
    # The first owner is no change of hands; a manager's change and a transfer are two.
    assert (await api.patch(f"/customers/{customer}", json={"owner_staff_id": b})).is_success
    staff_client = await caller_as(api, "staff", store_id=store, staff_id=b)
    async with staff_client:
        for refused, field in (((foreign, "x"), "to_staff_id"),):
            for target in refused:
                bad = await staff_client.post(
                    f"/customers/{customer}/transfer", json={"to_staff_id": target, "reason": "r"}
                )
                assert bad.status_code == 422, bad.text
                assert bad.json()["errors"][0]["field"] == field
        moved = await staff_client.post(
            f"/customers/{customer}/transfer",
            json={"to_staff_id": c, "reason": "the customer prefers a representative nearby"},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["owner_staff_id"] == c
        third = await staff_client.post(
            f"/customers/{customer}/transfer", json={"to_staff_id": a, "reason": "again"}
        )
    assert third.status_code == 409, third.text
    assert third.headers["content-type"] == "application/problem+json"
    assert third.json()["detail"].startswith("at_most_two_changes_of_hands_in_90_days")
    by_manager = await api.patch(f"/customers/{customer}", json={"owner_staff_id": a})
    assert by_manager.status_code == 409, by_manager.text
    assert "at_most_two_changes_of_hands_in_90_days" in by_manager.json()["detail"]
    found = await ownership(api, customer)
    assert found["owner_staff_id"] == c
    assert [h["kind"] for h in found["history"]] == ["registered", "owner_changed", "transfer"]
    assert found["history"][2]["reason"] == "the customer prefers a representative nearby"
    assert [h["change_of_hands"] for h in found["history"]] == [False, True, True]
    # A departure still moves the file (never refused): here to the pool, nobody sold to it.
    assert await depart(api, c) == {"reassigned": 0, "to_pool": 1}
    # A till neither transfers files nor manages the pool.
    key = (await api.post("/api-keys", json={"store_id": store, "name": "till"})).json()["key"]
    async with client_as(api, key=key) as till:
        denied = await till.post(
            f"/customers/{customer}/transfer", json={"to_staff_id": a, "reason": "r"}
        )
        assert denied.status_code == 403
        assert (await till.get(f"/stores/{store}/pool")).status_code == 403
    # An orphan archived meanwhile waits for nobody.
    assert await pool_ids(api, store) == {customer}
    assert (await api.delete(f"/customers/{customer}")).is_success
    assert await pool_ids(api, store) == set()


async def test_pool_files_go_only_to_staff_past_a_month_and_above_the_completion_rates(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = (await create_store(api, timezone=ZONE))["id"]
    today = local_today()
    # Hired two months ago: past the month, and not quiet for six (the daily job leaves them).
    long_ago = today - timedelta(days=60)
    month_ago = add_months(today, -1)
    staff = {
        "one_month_exactly": await staff_member(api, store, hired_on=month_ago),
        "a_month_and_a_day": await staff_member(api, store, hired_on=month_ago - timedelta(days=1)),
        "above_80": await staff_member(api, store, hired_on=long_ago),
        "at_80": await staff_member(api, store, hired_on=long_ago),
        "at_50": await staff_member(api, store, hired_on=long_ago),
        "below_50": await staff_member(api, store, hired_on=long_ago),
        "unknown": await staff_member(api, store, hired_on=long_ago),
    }
    rates = {
        "one_month_exactly": "0.95",
        "a_month_and_a_day": "0.95",
        "above_80": "0.8001",
        "at_80": "0.8",
        "at_50": "0.5",
        "below_50": "0.4999",
    }
    await close_months(stack, store, {staff[k]: v for k, v in rates.items()})
    files = await pooled_files(api, store, 4)

    async def refused(who: str, rule: str, **extra: Any) -> None:
        response = await assigned_once_known(api, store, staff[who], files[:1], **extra)
        assert response.status_code == 409, (who, response.text)
        assert response.json()["detail"].startswith(rule), (who, response.text)

    await refused("one_month_exactly", "worked_there_more_than_a_month")
    await refused("at_80", "completion_rate_50_to_80_percent_needs_manager_approval")
    await refused("below_50", "completion_rate_below_50_percent_never", manager_approval=True)
    unknown = await assign(api, store, staff["unknown"], files[:1], manager_approval=True)
    assert unknown.status_code == 409
    assert unknown.json()["detail"].startswith("completion_rate_last_month_known")
    assert await pool_ids(api, store) == set(files)  # nothing written by a refusal

    manager = await caller_as(api, "store_manager", store_id=store)
    async with manager:
        for who, file, extra in (
            ("a_month_and_a_day", files[0], {}),
            ("above_80", files[1], {}),
            ("at_80", files[2], {"manager_approval": True}),
            ("at_50", files[3], {"manager_approval": True}),
        ):
            response = await assigned_once_known(manager, store, staff[who], [file], **extra)
            assert response.status_code == 200, (who, response.text)
            assert response.json() == {"staff_id": staff[who], "assigned": [file]}
            last = (await ownership(manager, file))["history"][-1]
            assert (last["kind"], last["to_staff_id"]) == ("pool_assignment", staff[who])
            # The manager's approval is recorded where it was what allowed the assignment.
            assert last["manager_approval"] is (who in ("at_80", "at_50"))
        assert await pool_ids(manager, store) == set()
        # A file no longer in the pool is named.
        gone = await assign(manager, store, staff["above_80"], [files[0]])
        assert gone.status_code == 422 and gone.json()["errors"][0]["field"] == "customer_ids"
    staff_client = await caller_as(api, "staff", store_id=store)
    async with staff_client:
        assert (await assign(staff_client, store, staff["above_80"], files)).status_code == 403


async def test_the_yearly_take_back_of_pool_files_that_did_not_buy_again(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = (await create_store(api, timezone=ZONE))["id"]
    sku = (await create_product(api))["sku"]
    long_ago = local_today() - timedelta(days=60)
    quiet, five_percent, newcomer = [
        await staff_member(api, store, hired_on=long_ago) for _ in range(3)
    ]
    await close_months(stack, store, {quiet: "0.9", five_percent: "0.9", newcomer: "0.9"})
    quiet_files = await pooled_files(api, store, 21)
    five_files = await pooled_files(api, store, 20)
    for who, files in ((quiet, quiet_files), (five_percent, five_files)):
        response = await assigned_once_known(api, store, who, files)
        assert response.status_code == 200, response.text
    # A year passes for those assignments (the only rows moved in time: the history's).
    engine = make_engine(stack.database_url("customer"), pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE ownership_change SET at = at - interval '400 days' "
                    "WHERE store_id = :store AND kind = 'pool_assignment'"
                ),
                {"store": store},
            )
            # The cohort is read from the index of pool assignments (which registrations, the
            # trail's most entries, do not fill).
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = await session.execute(
                text("EXPLAIN " + pool._COHORT.text),
                {
                    "store_id": store,
                    "staff_id": quiet,
                    "after_days": 365,
                    "cohort_days": 365,
                    "take_back": "take_back",
                },
            )
            assert "ix_ownership_change_pool_received" in "\n".join(r[0] for r in plan)
    finally:
        await engine.dispose()
    # Bought again since: 1 of 21 (4.8 %) and 1 of 20 (exactly 5 %).
    await sale(api, quiet_files[0], sku, staff_id=quiet, days=100)
    await sale(api, five_files[0], sku, staff_id=five_percent, days=100)

    async def take_back(staff_id: str) -> httpx.Response:
        return await api.post(f"/stores/{store}/pool/take-backs", json={"staff_id": staff_id})

    at_five = await take_back(five_percent)
    assert at_five.status_code == 409, at_five.text
    assert at_five.json()["detail"].startswith("take_back_only_below_5_percent_bought_again")
    none_received = await take_back(newcomer)
    assert none_received.status_code == 409
    assert none_received.json()["detail"].startswith(
        "take_back_needs_pool_files_received_a_year_ago"
    )
    taken = await take_back(quiet)
    assert taken.status_code == 200, taken.text
    body = taken.json()
    assert (body["received"], body["bought_again"]) == (21, 1)
    assert len(body["taken_back"]) == 6  # 30 % of 21, rounded down
    assert quiet_files[0] not in body["taken_back"]
    assert set(body["taken_back"]) <= set(quiet_files)
    assert await pool_ids(api, store) == set(body["taken_back"])
    last = (await ownership(api, body["taken_back"][0]))["history"][-1]
    assert (last["kind"], last["from_staff_id"], last["to_staff_id"]) == ("take_back", quiet, None)
    again = await take_back(quiet)
    assert again.status_code == 409
    assert again.json()["detail"].startswith("take_back_once_a_year")


async def test_staff_quiet_for_six_months_are_departed_by_the_daily_job(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = (await create_store(api, timezone=ZONE))["id"]
    sku = (await create_product(api))["sku"]
    today = local_today()
    seven_months_ago = add_months(today, -7)
    # On the roster as a manager until its files and the sales are in: the service's own daily
    # job (which may run at any moment) measures serving staff only.
    quiet = await staff_member(api, store, hired_on=seven_months_ago, role="store_manager")
    selling = await staff_member(api, store, hired_on=seven_months_ago)
    newcomer = await staff_member(api, store, hired_on=add_months(today, -5))
    manager = await staff_member(api, store, hired_on=seven_months_ago, role="store_manager")
    served = await owned_file(api, store, quiet)
    lonely = await owned_file(api, store, quiet)
    await sale(api, served, sku, staff_id=selling, days=10)
    assert (await api.patch(f"/staff/{quiet}", json={"role": "staff"})).is_success
    # The job of tomorrow (store-local): whether or not the service's own worker ran today.
    engine = make_engine(stack.database_url("customer"), pool_size=2)
    try:
        await inactivity.run_due_stores(
            make_sessionmaker(engine), now=datetime.now(UTC) + timedelta(days=1)
        )
    finally:
        await engine.dispose()
    statuses = {
        s: (await api.get(f"/staff/{s}")).json()["status"]
        for s in (quiet, selling, newcomer, manager)
    }
    assert statuses == {
        quiet: "inactive",
        selling: "active",
        newcomer: "active",
        manager: "active",
    }
    assert (await ownership(api, served))["owner_staff_id"] == selling
    found = await ownership(api, lonely)
    assert found["owner_staff_id"] is None and found["in_pool_since"]
    last = found["history"][-1]
    assert (last["kind"], last["by"]) == ("departure", "system:inactivity")
    assert last["reason"].startswith("inactive")
