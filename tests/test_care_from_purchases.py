"""The whole chain customer → scoring → engagement, nothing published by the test: purchases
recorded through the gateway move the supply run-out, scoring publishes it with the expected
purchase date on ``score.changed`` (deploy/README.md, ``crm.scores.v1``), and engagement puts a
refill reminder due three days before it on the owner's list, moved by the next purchase, and,
once the five phases are done, routine calls and visits. The dates are the store's
(Asia/Shanghai) and read from the score, never assumed."""

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from tests.builders import (
    create_customer,
    create_product,
    create_staff,
    create_store,
    record_purchase,
)
from tests.test_care_from_scores import tasks_of, visit_the_five_phases


async def score_dates(api: httpx.AsyncClient, customer_id: str) -> tuple[date, date] | None:
    """The run-out and the expected purchase date ``GET /customers/{id}/score`` shows, once
    scoring has the purchase."""
    response = await api.get(f"/customers/{customer_id}/score")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    score = response.json()
    if score["supply_runs_out_on"] is None:
        return None
    return (
        date.fromisoformat(score["supply_runs_out_on"]),
        date.fromisoformat(score["predictions"]["next_purchase_on"]),
    )


async def test_a_purchase_puts_a_refill_and_routine_care_on_the_owners_list(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = (await create_store(api, timezone="Asia/Shanghai"))["id"]
    owner = (await create_staff(api, store_id=store))["id"]
    customer = (await create_customer(api, store_id=store, owner_staff_id=owner))["id"]
    product = await create_product(api, days_per_unit=30)
    await record_purchase(api, customer_id=customer, sku=product["sku"])
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()

    async def refill_due(before: date | None = None) -> tuple[dict[str, Any], date] | None:
        """The one open refill task and the run-out scoring shows, once they agree (and the
        run-out is past ``before``)."""
        found = await score_dates(api, customer)
        if found is None:
            return None
        runs_out, expected = found
        assert expected == runs_out  # no member event in this store
        if before is not None and runs_out <= before:
            return None
        refills = [
            t
            for t in await tasks_of(api, customer)
            if t["kind"] == "refill" and t["status"] == "open"
        ]
        assert len(refills) <= 1
        if refills and refills[0]["due_on"] == (runs_out - timedelta(days=3)).isoformat():
            return refills[0], runs_out
        return None

    refill, runs_out = await eventually(refill_due, timeout=60)
    assert runs_out >= today + timedelta(days=29)  # 30 days of supply from the sale's day
    assert (refill["method"], refill["assignee_staff_id"]) == ("phone", owner)

    # The five phases done by visits: the customer moves to routine care.
    await visit_the_five_phases(api, customer, owner)

    # The next purchase moves the run-out 30 days on: the refill moves with it (still one),
    # and the routine cadence is planned from the new expected date.
    await record_purchase(api, customer_id=customer, sku=product["sku"])
    moved, later = await eventually(lambda: refill_due(before=runs_out), timeout=60)
    assert later == runs_out + timedelta(days=30)
    assert moved["due_on"] == (later - timedelta(days=3)).isoformat()

    async def routine() -> list[dict[str, Any]] | None:
        found = [t for t in await tasks_of(api, customer) if t["kind"] == "routine"]
        return found or None

    planned = await eventually(routine, timeout=60)
    assert {t["method"] for t in planned} <= {"phone", "home"}
    assert {t["assignee_staff_id"] for t in planned} == {owner}
    assert all(
        today.isoformat() <= t["due_on"] < (today + timedelta(days=14)).isoformat() for t in planned
    )
