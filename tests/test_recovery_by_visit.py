"""A stopped customer's recovery by the reason a visit learned, through the gateway: a visit
naming a competitor, then ``score.changed`` saying ``stopped`` on the real broker, gives the
review with the manager, and that review done the owner's visit; a refund after a visit gives
the refund's reason; a manager reassigns a task only to an active staff member of its store on
the customer service's roster (422 naming ``staff_id`` otherwise, 503 when the roster cannot be
read). Days are the store's (Asia/Shanghai), relative to today."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import EventEnvelope, Topics
from tests.broker import publish
from tests.builders import (
    caller_as,
    create_customer,
    create_product,
    create_staff,
    create_store,
    record_purchase,
    unique,
)

# Above any version scoring's own events for the customer reach in the test.
VERSION = 1_000_000


def in_days(days: int) -> str:
    return (datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=days)).isoformat()


async def log_visit(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Log a visit once engagement has the file (a refused attempt stores no answer)."""
    key = unique("visit")

    async def logged() -> httpx.Response | None:
        response = await client.post("/visits", json=body, headers={"Idempotency-Key": key})
        return response if response.status_code == 201 else None

    visit: dict[str, Any] = (await eventually(logged, timeout=60)).json()
    return visit


async def publish_stopped(stack: LocalStack, *, store_id: str, customer_id: str) -> None:
    stopped = EventEnvelope(
        type="score.changed",
        store_id=store_id,
        customer_id=customer_id,
        payload={
            "value_tier": "small",
            "previous_tier": "small",
            "ladder_level": "0",
            "previous_ladder_level": "0",
            "ladder_score": 0,
            "lifecycle": "stopped",
            "previous_lifecycle": "active_second_line",
            "net_spend_365d": "100.00",
            "cause": "ageing",
            "version": VERSION,
        },
    )
    await publish(stack, Topics.SCORES, stopped)


async def recovery_tasks(client: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    tasks = await client.get("/tasks", params={"customer_id": customer_id, "limit": 100})
    assert tasks.status_code == 200, tasks.text
    found = [t for t in tasks.json()["items"] if t["kind"] == "recovery"]
    return sorted(found, key=lambda t: t["recovery_step"])


async def test_a_competitor_named_by_a_visit_gives_the_review_then_the_visit(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = (await create_store(api))["id"]
    owner = (await create_staff(api, store_id=store))["id"]
    customer = (await create_customer(api, store_id=store, owner_staff_id=owner))["id"]
    manager = await caller_as(api, "store_manager", store_id=store)
    try:
        visit = await log_visit(
            manager,
            {
                "customer_id": customer,
                "staff_id": owner,
                "method": "home",
                "occurred_at": datetime.now(UTC).isoformat(),
                "outcome": "buys from the shop across the street now",
                "stop_reason": "competitor",
            },
        )
        assert visit["stop_reason"] == "competitor"
        listed = (await manager.get("/visits", params={"customer_id": customer})).json()
        assert [(v["id"], v["stop_reason"]) for v in listed["items"]] == [
            (visit["id"], "competitor")
        ]
        await publish_stopped(stack, store_id=store, customer_id=customer)

        async def review() -> dict[str, Any] | None:
            found = await recovery_tasks(manager, customer)
            return found[0] if found else None

        task = await eventually(review, timeout=60)
        assert (
            task["recovery_reason"],
            task["recovery_step"],
            task["with_manager"],
            task["due_on"],
            task["assignee_staff_id"],
            task["status"],
        ) == ("competitor", 1, True, in_days(3), owner, "open")

        done = await manager.post(f"/tasks/{task['id']}/complete", json={})
        assert done.status_code == 200, done.text
        reviewed, then = await recovery_tasks(manager, customer)
        assert reviewed["status"] == "done"
        assert (
            then["recovery_reason"],
            then["recovery_step"],
            then["with_manager"],
            then["method"],
            then["due_on"],
            then["assignee_staff_id"],
            then["status"],
        ) == ("competitor", 2, False, "home", in_days(3), owner, "open")
    finally:
        await manager.aclose()


async def test_a_refund_after_a_visit_gives_the_refunds_reason(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = (await create_store(api))["id"]
    owner = (await create_staff(api, store_id=store))["id"]
    customer = (await create_customer(api, store_id=store, owner_staff_id=owner))["id"]
    product = await create_product(api)
    purchase = await record_purchase(api, customer_id=customer, sku=product["sku"])
    await log_visit(
        api,
        {
            "customer_id": customer,
            "staff_id": owner,
            "method": "phone",
            "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "outcome": "tried another brand",
            "stop_reason": "competitor",
        },
    )
    refund = await api.post(f"/purchases/{purchase['id']}/refund", json={"reason": "quality"})
    assert refund.status_code == 201, refund.text

    # Engagement has seen the refund once it closed the product's plan.
    async def plan_closed() -> bool | None:
        tasks = await api.get("/tasks", params={"customer_id": customer, "limit": 100})
        phases = [t for t in tasks.json()["items"] if t["kind"] == "follow_up"]
        return True if phases and all(t["status"] == "closed" for t in phases) else None

    await eventually(plan_closed, timeout=60)
    await publish_stopped(stack, store_id=store, customer_id=customer)

    async def recovery() -> dict[str, Any] | None:
        found = await recovery_tasks(api, customer)
        return found[0] if found else None

    task = await eventually(recovery, timeout=60)
    assert (task["recovery_reason"], task["method"], task["due_on"]) == (
        "product",
        "expert_phone",
        in_days(2),
    )


async def test_a_task_is_reassigned_only_to_an_active_staff_member_of_its_store(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = (await create_store(api))["id"]
    owner = (await create_staff(api, store_id=store))["id"]
    colleague = (await create_staff(api, store_id=store))["id"]
    leaver = (await create_staff(api, store_id=store))["id"]
    left = await api.patch(f"/staff/{leaver}", json={"status": "left"})
    assert left.status_code == 200, left.text
    elsewhere = (await create_staff(api, store_id=(await create_store(api))["id"]))["id"]
    customer = (await create_customer(api, store_id=store, owner_staff_id=owner))["id"]
    visit = await log_visit(
        api,
        {
            "customer_id": customer,
            "staff_id": owner,
            "method": "phone",
            "occurred_at": datetime.now(UTC).isoformat(),
            "outcome": "call again next week",
            "next_step": {"note": "call about the knee", "due_on": in_days(7)},
        },
    )
    task_id = visit["next_task_id"]
    manager = await caller_as(api, "store_manager", store_id=store)
    try:

        async def reassign(client: httpx.AsyncClient, staff_id: str) -> httpx.Response:
            return await client.post(f"/tasks/{task_id}/reassign", json={"staff_id": staff_id})

        # Unknown, another store's (out of the manager's sight, and out of the task's store
        # for head office who sees it), or gone: 422 naming staff_id, the task unmoved.
        for client, staff_id in [
            (manager, unique("nobody")),
            (manager, elsewhere),
            (api, elsewhere),
            (manager, leaver),
        ]:
            refused = await reassign(client, staff_id)
            assert refused.status_code == 422, (staff_id, refused.text)
            assert [e["field"] for e in refused.json()["errors"]] == ["staff_id"]
        moved = await reassign(manager, colleague)
        assert moved.status_code == 200, moved.text
        assert moved.json()["assignee_staff_id"] == colleague

        # The roster out of reach: nothing is reassigned blind.
        stack.stop_service("customer")
        try:
            blind = await reassign(manager, owner)
            assert blind.status_code == 503, blind.text
        finally:
            stack.start_service("customer")
            stack.wait_healthy("customer")
        tasks = await manager.get("/tasks", params={"customer_id": customer})
        [task] = [t for t in tasks.json()["items"] if t["id"] == task_id]
        assert task["assignee_staff_id"] == colleague
    finally:
        await manager.aclose()
