"""Complaints through the gateway: opened by the store's people or a partner's system, stepped
through in order by the store's people only, a second follow-up on the owner's list when the
customer is not satisfied, the store's statistics, another store's complaints out of reach, and
a quality complaint sending a customer who then stops (``score.changed`` on the real broker) to
the after-sales expert. Days are the store's (Asia/Shanghai), relative to today."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from tests.builders import (
    caller_as,
    client_as,
    create_customer,
    create_staff,
    create_store,
    unique,
)
from tests.test_recovery_by_visit import in_days, publish_stopped


def today() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()


async def open_when_known(
    client: httpx.AsyncClient, body: dict[str, Any], key: str
) -> dict[str, Any]:
    """Open a complaint once engagement has the file (a refused attempt stores no answer)."""

    async def opened() -> httpx.Response | None:
        response = await client.post("/complaints", json=body, headers={"Idempotency-Key": key})
        return response if response.status_code == 201 else None

    complaint: dict[str, Any] = (await eventually(opened, timeout=60)).json()
    return complaint


async def test_a_complaint_is_heard_stepped_and_followed_up_in_its_store(
    api: httpx.AsyncClient,
) -> None:
    store = (await create_store(api))["id"]
    owner = (await create_staff(api, store_id=store))["id"]
    customer = (await create_customer(api, store_id=store, owner_staff_id=owner))["id"]
    staff = await caller_as(api, "staff", store_id=store, staff_id=owner)
    key = (await api.post("/api-keys", json={"store_id": store, "name": "counter"})).json()
    partner = client_as(api, key=key["key"])
    other_store = (await create_store(api))["id"]
    outsider = await caller_as(api, "store_manager", store_id=other_store)
    try:
        body = {"customer_id": customer, "points": "the tea tastes stale", "category": "quality"}
        retry = unique("k")
        complaint = await open_when_known(staff, body, retry)
        url = f"/complaints/{complaint['id']}"
        assert (complaint["status"], complaint["next_step"], complaint["steps"]) == (
            "open",
            "listen",
            [],
        )
        assert complaint["opened_by_staff_id"] == owner
        # The same key and body replay the complaint; another body with it is refused.
        again = await staff.post("/complaints", json=body, headers={"Idempotency-Key": retry})
        assert (again.status_code, again.json()["id"]) == (201, complaint["id"])
        other = await staff.post(
            "/complaints", json={**body, "points": "other"}, headers={"Idempotency-Key": retry}
        )
        assert other.status_code == 409, other.text
        for bad in ({**body, "points": "  "}, {**body, "category": "weather"}, {**body, "x": 1}):
            refused = await staff.post("/complaints", json=bad)
            assert refused.status_code == 422, refused.text

        # Out of order: 409 naming the step expected.
        early = await staff.post(f"{url}/steps", json={"step": "apologise"})
        assert early.status_code == 409, early.text
        assert early.headers["content-type"] == "application/problem+json"
        assert "next step is listen" in early.json()["detail"]
        for step in ({"step": "listen", "notes": "and the tin was dented"}, {"step": "apologise"}):
            taken = await staff.post(f"{url}/steps", json=step)
            assert taken.status_code == 201, taken.text
        repeated = await staff.post(f"{url}/steps", json={"step": "apologise"})
        assert repeated.status_code == 409 and "next step is resolve" in repeated.json()["detail"]
        resolve = {"step": "resolve", "solution": "a fresh tin", "compensation": "15.00"}
        assert (await staff.post(f"{url}/steps", json=resolve)).status_code == 201
        unsatisfied = await staff.post(
            f"{url}/steps", json={"step": "feedback", "satisfied": False}
        )
        assert unsatisfied.status_code == 201, unsatisfied.text
        shown = unsatisfied.json()
        assert (shown["status"], shown["next_step"], shown["round"]) == ("open", "resolve", 2)
        assert shown["steps"][2]["compensation"] == "15.00"
        assert [s["staff_id"] for s in shown["steps"]] == [owner] * 4

        # The second follow-up is on the owner's list, due in two days.
        tasks = await staff.get("/tasks", params={"customer_id": customer, "limit": 100})
        [task] = [t for t in tasks.json()["items"] if t["kind"] == "complaint"]
        assert task["id"] == shown["follow_up_task_id"]
        assert (task["assignee_staff_id"], task["due_on"], task["status"]) == (
            owner,
            in_days(2),
            "open",
        )

        # A partner's system opens and reads complaints, but takes no step.
        from_counter = await partner.post("/complaints", json={**body, "category": "price"})
        assert from_counter.status_code == 201, from_counter.text
        assert (await partner.get(url)).status_code == 200
        stepped = await partner.post(f"{url}/steps", json=resolve)
        assert stepped.status_code == 403, stepped.text

        # Another store's manager never reaches it.
        assert (await outsider.get(url)).status_code == 404
        assert (await outsider.post(f"{url}/steps", json=resolve)).status_code == 404
        listed = await outsider.get("/complaints", params={"customer_id": customer})
        assert listed.status_code == 200 and listed.json()["items"] == []
        assert (await outsider.post("/complaints", json=body)).status_code == 404
        assert (await outsider.get(f"/stores/{store}/complaint-stats")).status_code == 404

        # The second round closes it: not on the spot, the follow-up done.
        assert (await staff.post(f"{url}/steps", json=resolve)).status_code == 201
        closed = await staff.post(f"{url}/steps", json={"step": "feedback", "satisfied": True})
        assert closed.status_code == 201, closed.text
        assert (closed.json()["status"], closed.json()["resolved_on_the_spot"]) == ("closed", False)
        after = await staff.post(f"{url}/steps", json={"step": "listen"})
        assert after.status_code == 409 and "closed" in after.json()["detail"]
        done = await staff.get("/tasks", params={"customer_id": customer, "status": "done"})
        assert [t["id"] for t in done.json()["items"] if t["kind"] == "complaint"] == [task["id"]]

        listed = await staff.get("/complaints", params={"customer_id": customer, "status": "open"})
        assert [c["id"] for c in listed.json()["items"]] == [from_counter.json()["id"]]
        stats = await api.get(
            f"/stores/{store}/complaint-stats", params={"from": today(), "to": today()}
        )
        assert stats.status_code == 200, stats.text
        counted = stats.json()
        assert (counted["opened"], counted["still_open"], counted["closed"]) == (2, 1, 1)
        assert (counted["resolved_on_the_spot"], counted["second_follow_ups"]) == (0, 1)
        assert counted["median_resolution_minutes"] is not None
        assert (await staff.get(f"/stores/{store}/complaint-stats")).status_code == 403
    finally:
        for client in (staff, partner, outsider):
            await client.aclose()


async def test_a_quality_complaint_sends_a_customer_who_stops_to_the_expert(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = (await create_store(api))["id"]
    owner = (await create_staff(api, store_id=store))["id"]
    customer = (await create_customer(api, store_id=store, owner_staff_id=owner))["id"]
    body = {"customer_id": customer, "points": "no effect after a month", "category": "quality"}
    await open_when_known(api, body, unique("k"))

    await publish_stopped(stack, store_id=store, customer_id=customer)

    async def recovery() -> dict[str, Any] | None:
        tasks = await api.get("/tasks", params={"customer_id": customer, "limit": 100})
        found = [t for t in tasks.json()["items"] if t["kind"] == "recovery"]
        return found[0] if found else None

    task = await eventually(recovery, timeout=60)
    # Urgent, within two days: the after-sales expert calls, or the manager visits.
    assert (task["recovery_reason"], task["method"], task["due_on"], task["with_manager"]) == (
        "product",
        "expert_phone",
        in_days(2),
        True,
    )
    assert task["assignee_staff_id"] == owner
