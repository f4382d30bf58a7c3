"""The follow-up plan and visits through the gateway, on the real stack: a plan's days in the
store's calendar, one plan per product, a refund closing it, visits completing tasks (phone and
phone make phase 3 a home visit) and carrying collected fields to the file, what a visit refuses,
and who may complete, reschedule or reassign a task."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm_devstack.fixtures import eventually
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_product,
    create_staff,
    create_store,
    days_ago,
    record_purchase,
    sign_in,
    unique,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def store_today() -> date:
    return datetime.now(SHANGHAI).date()


async def tasks_of(
    api: httpx.AsyncClient, customer_id: str, count: int = 1, **params: str
) -> list[dict[str, Any]]:
    """The customer's follow-up tasks once there are at least ``count``, in plan order (special
    days may give the customer care tasks of their own)."""

    async def listed() -> list[dict[str, Any]] | None:
        response = await api.get("/tasks", params={"customer_id": customer_id, **params})
        assert response.status_code == 200, response.text
        items = [t for t in response.json()["items"] if t["kind"] == "follow_up"]
        return items if len(items) >= count else None

    found = await eventually(listed, timeout=60)
    return sorted(found, key=lambda t: (t["sku"] or "", t["phase"] or 9, t["due_on"]))


async def a_customer(api: httpx.AsyncClient) -> dict[str, Any]:
    store = await create_store(api)
    owner = await create_staff(api, store_id=store["id"])
    customer = await create_customer(api, store_id=store["id"], owner_staff_id=owner["id"])
    return {"store": store, "owner": owner, "customer": customer}


async def file_known(api: httpx.AsyncClient, customer_id: str, staff_id: str) -> None:
    """Wait until engagement holds the file (its copy comes from crm.customers.v1)."""

    async def accepted() -> bool:
        body = visit_body(customer_id, staff_id, outcome="registered")
        return (await api.post("/visits", json=body)).status_code == 201

    await eventually(accepted, timeout=60)


def visit_body(customer_id: str, staff_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "staff_id": staff_id,
        "method": "phone",
        "occurred_at": datetime.now(UTC).isoformat(),
        "outcome": "reached",
        **fields,
    }


async def test_a_plans_days_one_plan_per_product_and_a_refund_closing_it(
    api: httpx.AsyncClient,
) -> None:
    made = await a_customer(api)
    customer, owner = made["customer"], made["owner"]
    a, b = await create_product(api), await create_product(api)
    # 01:30 on 29 January in Shanghai is still the 28th in UTC: the store's day counts.
    today = date.today()
    year = today.year if today > date(today.year, 3, 1) else today.year - 1
    first = await record_purchase(
        api, customer_id=customer["id"], sku=a["sku"], purchased_at=f"{year}-01-28T17:30:00Z"
    )
    tasks = await tasks_of(api, customer["id"], 5)
    assert [t["due_on"] for t in tasks] == [
        f"{year}-02-01",
        f"{year}-02-05",
        f"{year}-02-12",
        f"{year}-02-19",
        f"{year}-02-26",
    ]
    assert [(t["phase"], t["method"], t["methods_allowed"]) for t in tasks] == [
        (1, "home", ["home", "phone"]),
        (2, "home", ["home", "phone"]),
        (3, "phone", ["phone", "home"]),
        (4, "home", ["home", "expert_phone"]),
        (5, "home", ["home", "expert_phone"]),
    ]
    assert {(t["status"], t["assignee_staff_id"], t["kind"]) for t in tasks} == {
        ("overdue", owner["id"], "follow_up")
    }
    assert len(await tasks_of(api, customer["id"], 5, status="overdue")) == 5
    assert len(await tasks_of(api, customer["id"], 5, status="open")) == 5

    # The same product again, and another: only the other one starts a plan (one partition,
    # so once B's plan is there, the repeat purchase of A was consumed before it).
    await record_purchase(api, customer_id=customer["id"], sku=a["sku"], purchased_at=days_ago(2))
    await record_purchase(api, customer_id=customer["id"], sku=b["sku"], purchased_at=days_ago(1))
    tasks = await tasks_of(api, customer["id"], 10)
    assert sorted(t["sku"] for t in tasks) == [a["sku"]] * 5 + [b["sku"]] * 5

    refund = await api.post(f"/purchases/{first['id']}/refund", json={"reason": "no_effect"})
    assert refund.status_code == 201, refund.text

    async def closed() -> list[dict[str, Any]] | None:
        found = await tasks_of(api, customer["id"], 10)
        return found if any(t["status"] == "closed" for t in found) else None

    after = await eventually(closed, timeout=60)
    assert [(t["sku"], t["status"], t["closed_reason"]) for t in after] == [
        *[(a["sku"], "closed", "refunded")] * 5,
        *[(b["sku"], "open", None)] * 5,
    ]


async def test_visits_complete_tasks_and_two_calls_make_phase_3_a_home_visit(
    api: httpx.AsyncClient,
) -> None:
    made = await a_customer(api)
    customer, owner, store = made["customer"], made["owner"], made["store"]
    product = await create_product(api)
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    tasks = await tasks_of(api, customer["id"], 5)
    account = await create_account(api, role="staff", store_id=store["id"], staff_id=owner["id"])
    token = (await sign_in(api, account))["access_token"]
    async with client_as(api, token=token) as staff:
        await file_known(staff, customer["id"], owner["id"])
        key = {"Idempotency-Key": unique("visit")}
        first = visit_body(
            customer["id"],
            owner["id"],
            task_id=tasks[0]["id"],
            satisfaction=5,
            notes="uses it every morning",
            collected={"deep": {"hobbies": ["钓鱼"]}},
        )
        logged = await staff.post("/visits", json=first, headers=key)
        assert logged.status_code == 201, logged.text
        again = await staff.post("/visits", json=first, headers=key)
        assert (again.status_code, again.json()["id"]) == (201, logged.json()["id"])
        other = await staff.post("/visits", json={**first, "notes": "another"}, headers=key)
        assert other.status_code == 409
        # The staff member's own visit, without naming themselves, with a next step.
        next_day = (store_today() + timedelta(days=3)).isoformat()
        second = visit_body(
            customer["id"],
            owner["id"],
            task_id=tasks[1]["id"],
            next_step={"note": "bring the blood pressure log", "due_on": next_day},
        )
        del second["staff_id"]
        logged2 = await staff.post("/visits", json=second)
        assert logged2.status_code == 201, logged2.text
        assert logged2.json()["staff_id"] == owner["id"]
        listed = await staff.get("/visits", params={"customer_id": customer["id"], "limit": 2})
        assert listed.status_code == 200
        page = listed.json()
        assert [v["id"] for v in page["items"]][1] == logged.json()["id"]
        assert page["next_cursor"]

    after = await tasks_of(api, customer["id"], 6)
    phases = {t["phase"]: t for t in after if t["phase"]}
    for n in (1, 2):
        assert (phases[n]["status"], phases[n]["done_by"], phases[n]["done_on_time"]) == (
            "done",
            owner["id"],
            True,
        )
    assert (phases[3]["method"], phases[3]["methods_allowed"]) == ("home", ["home"])
    [step] = [t for t in after if t["phase"] is None]
    assert (step["due_on"], step["purpose"], step["status"]) == (
        next_day,
        "bring the blood pressure log",
        "open",
    )
    assert step["assignee_staff_id"] == owner["id"]

    async def collected() -> dict[str, Any] | None:
        file = (await api.get(f"/customers/{customer['id']}")).json()
        return file if (file.get("deep") or {}).get("hobbies") == ["钓鱼"] else None

    await eventually(collected, timeout=60)


async def test_what_a_visit_refuses(api: httpx.AsyncClient) -> None:
    made, elsewhere = await a_customer(api), await a_customer(api)
    customer, owner = made["customer"], made["owner"]
    other = await create_customer(api, store_id=made["store"]["id"])
    product = await create_product(api)
    for c in (customer, other):
        await record_purchase(api, customer_id=c["id"], sku=product["sku"])
    mine, theirs = await tasks_of(api, customer["id"], 5), await tasks_of(api, other["id"], 5)
    await file_known(api, customer["id"], owner["id"])
    manager = await create_account(api, role="store_manager", store_id=made["store"]["id"])
    async with client_as(api, token=(await sign_in(api, manager))["access_token"]) as client:

        async def refused(status: int, field: str | None = None, **fields: Any) -> None:
            response = await client.post(
                "/visits", json=visit_body(customer["id"], owner["id"]) | fields
            )
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == "application/problem+json"
            if field:
                assert field in {e["field"] for e in response.json()["errors"]}, response.text

        await refused(404, customer_id="no-such-customer")
        await refused(404, customer_id=elsewhere["customer"]["id"])
        await refused(422, "task_id", task_id=theirs[0]["id"])
        await refused(422, "task_id", task_id="no-such-task")
        await refused(422, "satisfaction", satisfaction=6)
        await refused(422, "method", method="fax")
        await refused(
            422, "occurred_at", occurred_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()
        )
        await refused(422, "outcome", outcome="")
        done = await client.post(f"/tasks/{mine[0]['id']}/complete")
        assert done.status_code == 200, done.text
        await refused(409, task_id=mine[0]["id"])
    # A staff member logs their own visits, not a colleague's.
    colleague = await create_staff(api, store_id=made["store"]["id"])
    staff = await create_account(
        api, role="staff", store_id=made["store"]["id"], staff_id=colleague["id"]
    )
    async with client_as(api, token=(await sign_in(api, staff))["access_token"]) as client:
        await refused(422, "staff_id")


async def test_complete_reschedule_and_reassign_by_role(api: httpx.AsyncClient) -> None:
    made = await a_customer(api)
    customer, store = made["customer"], made["store"]
    product = await create_product(api)
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    tasks = await tasks_of(api, customer["id"], 5)
    other_store = await create_store(api)
    callers = {}
    for role, store_id in (
        ("staff", store["id"]),
        ("store_manager", store["id"]),
        ("outsider", other_store["id"]),
    ):
        account = await create_account(
            api, role="store_manager" if role == "outsider" else role, store_id=store_id
        )
        callers[role] = client_as(api, token=(await sign_in(api, account))["access_token"])
    key = (await api.post("/api-keys", json={"store_id": store["id"], "name": "p"})).json()
    callers["partner"] = client_as(api, key=key["key"])
    staff, manager = callers["staff"], callers["store_manager"]
    try:
        done = await staff.post(f"/tasks/{tasks[0]['id']}/complete")
        assert (done.status_code, done.json()["status"]) == (200, "done")
        assert (await staff.post(f"/tasks/{tasks[0]['id']}/complete")).status_code == 409

        later = (store_today() + timedelta(days=40)).isoformat()
        moved = await staff.post(
            f"/tasks/{tasks[1]['id']}/reschedule",
            json={"due_on": later, "reason": "in hospital until next month"},
        )
        assert moved.status_code == 200, moved.text
        assert (moved.json()["due_on"], moved.json()["rescheduled_from"]) == (
            later,
            tasks[1]["due_on"],
        )
        assert moved.json()["reschedule_reason"] == "in hospital until next month"
        past = (store_today() - timedelta(days=1)).isoformat()
        for body in ({"due_on": past, "reason": "x"}, {"due_on": later, "reason": ""}):
            response = await staff.post(f"/tasks/{tasks[1]['id']}/reschedule", json=body)
            assert response.status_code == 422, response.text

        colleague = await create_staff(api, store_id=store["id"])
        body = {"staff_id": colleague["id"]}
        for refused in ("staff", "partner"):
            response = await callers[refused].post(f"/tasks/{tasks[2]['id']}/reassign", json=body)
            assert response.status_code == 403, response.text
        outsider = await callers["outsider"].post(f"/tasks/{tasks[2]['id']}/reassign", json=body)
        assert outsider.status_code == 404
        given = await manager.post(f"/tasks/{tasks[2]['id']}/reassign", json=body)
        assert (given.status_code, given.json()["assignee_staff_id"]) == (200, colleague["id"])
        assert (
            await callers["partner"].post(f"/tasks/{tasks[3]['id']}/complete")
        ).status_code == 403
        seen = await callers["partner"].get("/tasks", params={"customer_id": customer["id"]})
        assert seen.status_code == 200
        assert sum(t["kind"] == "follow_up" for t in seen.json()["items"]) == 5
    finally:
        for caller in callers.values():
            await caller.aclose()
