"""Refill, routine and recovery tasks end to end: a customer registered and sold to through the
gateway finishes the five phases by visits logged through the gateway (routine care), then
``score.changed`` events published to the real broker, as scoring will publish them with the
supply run-out, the expected purchase and a stopped lifecycle, put a refill reminder, routine
calls and visits and a recovery task on the owner's list in ``GET /tasks``. The dates are the
store's (Asia/Shanghai) and relative to today."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import EventEnvelope, Topics
from tests.broker import publish
from tests.builders import (
    create_customer,
    create_product,
    create_staff,
    create_store,
    record_purchase,
)

# Above any version scoring's own events for the customer reach in the test.
VERSION = 1_000_000


async def tasks_of(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    response = await api.get("/tasks", params={"customer_id": customer_id, "limit": 100})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_refill_routine_and_recovery_tasks_show_on_the_owners_list(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = (await create_store(api, timezone="Asia/Shanghai"))["id"]
    owner = (await create_staff(api, store_id=store))["id"]
    customer = (await create_customer(api, store_id=store, owner_staff_id=owner))["id"]
    product = await create_product(api)
    await record_purchase(api, customer_id=customer, sku=product["sku"])

    await visit_the_five_phases(api, customer, owner)

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    runs_out = today + timedelta(days=20)

    def changed(version: int, **fields: Any) -> EventEnvelope:
        payload = {
            "value_tier": "small",
            "previous_tier": "small",
            "ladder_level": "0",
            "previous_ladder_level": "0",
            "ladder_score": 0,
            "lifecycle": "new_this_year",
            "previous_lifecycle": "new_this_year",
            "net_spend_365d": "100.00",
            "cause": "ageing",
            "version": version,
        } | {k: v.isoformat() if isinstance(v, date) else v for k, v in fields.items()}
        return EventEnvelope(
            type="score.changed", store_id=store, customer_id=customer, payload=payload
        )

    await publish(
        stack,
        Topics.SCORES,
        changed(VERSION, supply_runs_out_on=runs_out, expected_purchase_on=runs_out),
        changed(
            VERSION + 1,
            lifecycle="stopped",
            previous_lifecycle="new_this_year",
            supply_runs_out_on=runs_out,
            expected_purchase_on=runs_out,
        ),
    )

    async def care() -> dict[str, list[dict[str, Any]]] | None:
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for t in await tasks_of(api, customer):
            by_kind.setdefault(t["kind"], []).append(t)
        return by_kind if {"refill", "routine", "recovery"} <= set(by_kind) else None

    shown = await eventually(care, timeout=60)
    [refill] = shown["refill"]
    assert (refill["due_on"], refill["method"], refill["status"]) == (
        (runs_out - timedelta(days=3)).isoformat(),
        "phone",
        "open",
    )
    routine = shown["routine"]
    assert {t["method"] for t in routine} <= {"phone", "home"}
    assert all(
        today.isoformat() <= t["due_on"] < (today + timedelta(days=14)).isoformat() for t in routine
    )
    [recovery] = shown["recovery"]
    # No refund, complaint or visit gave a reason: the owner visits within 7 days.
    assert (
        recovery["recovery_reason"],
        recovery["method"],
        recovery["due_on"],
        recovery["with_manager"],
    ) == ("unknown", "home", (today + timedelta(days=7)).isoformat(), False)
    tasks = [refill, *routine, recovery]
    assert {t["assignee_staff_id"] for t in tasks} == {owner}


async def visit_the_five_phases(api: httpx.AsyncClient, customer: str, owner: str) -> None:
    """The sale's five follow-up phases done, in order, by the owner's visits."""

    async def phases() -> list[dict[str, Any]] | None:
        found = [t for t in await tasks_of(api, customer) if t["kind"] == "follow_up"]
        return found if len(found) == 5 else None

    for task in sorted(await eventually(phases, timeout=60), key=lambda t: t["phase"]):
        done = await api.post(
            "/visits",
            json={
                "customer_id": customer,
                "staff_id": owner,
                "method": "home",
                "occurred_at": datetime.now(UTC).isoformat(),
                "outcome": "visited",
                "task_id": task["id"],
            },
        )
        assert done.status_code == 201, done.text
