"""The customer file's events on ``crm.customers.v1`` move engagement's tasks (real broker, tasks
read through the gateway): to a new owner, onto a merge's survivor, closed by archive or erasure."""

from collections import Counter
from typing import Any

import asyncpg
import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from crm_libs.events.envelope import EventEnvelope, Topics
from tests.broker import publish
from tests.builders import (
    create_customer,
    create_product,
    create_staff,
    create_store,
    record_purchase,
)


async def next_version(api: httpx.AsyncClient, customer_id: str) -> int:
    """The version the file's next change would have in the customer service."""
    response = await api.get(f"/customers/{customer_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["version"]) + 1


def file_event(
    type_: str,
    customer: dict[str, Any],
    *,
    version: int,
    owner: str | None,
    status: str = "active",
    **payload: Any,
) -> EventEnvelope:
    file = {
        "timezone": "Asia/Shanghai",
        "status": status,
        "owner_staff_id": owner,
        "birthday": None,
        "birthday_calendar": "solar",
        "wedding_anniversary": None,
        "relations": [],
        "referrer_id": None,
        "consents": {"sms": {"granted": False, "at": None, "channel": None}},
        "version": version,
    }
    return EventEnvelope(
        type=type_,
        store_id=customer["store_id"],
        customer_id=customer["id"],
        payload={"file": file, **payload},
    )


async def tasks_of(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    """The customer's follow-up plan tasks (a purchase scored also brings a refill reminder,
    whose own moves are tested with it)."""
    response = await api.get("/tasks", params={"customer_id": customer_id})
    assert response.status_code == 200, response.text
    return [t for t in response.json()["items"] if t["kind"] == "follow_up"]


def tally(tasks: list[dict[str, Any]]) -> Counter[tuple[str, str, str | None, str | None]]:
    """How many tasks per (product, status, closed reason, assignee)."""
    return Counter(
        (t["sku"], t["status"], t["closed_reason"], t["assignee_staff_id"]) for t in tasks
    )


async def test_tasks_follow_owner_changes_merges_archives_and_erasures(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    first, second = await create_product(api), await create_product(api)
    seller, new_owner, survivor_owner = [
        await create_staff(api, store_id=store["id"]) for _ in "abc"
    ]
    moved, gone, kept, erased = [await create_customer(api, store_id=store["id"]) for _ in "abcd"]
    for customer, product in [
        (moved, first),
        (gone, first),
        (gone, second),
        (kept, first),
        (erased, first),
    ]:
        await record_purchase(
            api, customer_id=customer["id"], sku=product["sku"], staff_id=seller["id"]
        )
    for customer, count in [(moved, 5), (gone, 10), (kept, 5), (erased, 5)]:
        await eventually(lambda c=customer, n=count: _has(api, c["id"], n), timeout=60)

    v_moved = await next_version(api, moved["id"])
    owner_change = file_event(
        "customer.updated",
        moved,
        version=v_moved,
        owner=new_owner["id"],
        changed=["owner_staff_id"],
    )
    # Delivered twice, and another event claiming the same version: the copy applies one.
    same_version = file_event(
        "customer.updated", moved, version=v_moved, owner=seller["id"], changed=["owner_staff_id"]
    )
    await publish(
        stack,
        Topics.CUSTOMERS,
        owner_change,
        owner_change,
        same_version,
        file_event(
            "customer.updated",
            kept,
            version=await next_version(api, kept["id"]),
            owner=survivor_owner["id"],
            changed=["owner_staff_id"],
        ),
        file_event(
            "customer.merged",
            gone,
            version=await next_version(api, gone["id"]),
            owner=seller["id"],
            status="merged",
            merged_into=kept["id"],
        ),
        file_event(
            "customer.erased",
            erased,
            version=await next_version(api, erased["id"]),
            owner=None,
            status="erased",
        ),
    )

    sku1, sku2 = first["sku"], second["sku"]
    survivor_expected = Counter(
        {
            (sku1, "open", None, survivor_owner["id"]): 5,
            (sku1, "closed", "merged", seller["id"]): 5,  # doubles of the survivor's own
            (sku2, "open", None, survivor_owner["id"]): 5,
        }
    )

    async def survivor_has_all() -> bool:
        return tally(await tasks_of(api, kept["id"])) == survivor_expected

    await eventually(survivor_has_all)
    assert await tasks_of(api, gone["id"]) == []

    async def erased_closed() -> bool:
        return tally(await tasks_of(api, erased["id"])) == Counter(
            {(sku1, "closed", "erased", seller["id"]): 5}
        )

    await eventually(erased_closed)

    # Archived after the owner change, on the same partition: once its tasks are closed, every
    # earlier event of the file has been applied, so they show who had them.
    await publish(
        stack,
        Topics.CUSTOMERS,
        file_event(
            "customer.archived",
            moved,
            version=v_moved + 1,
            owner=new_owner["id"],
            status="archived",
        ),
    )

    async def archived_closed() -> Counter[tuple[str, str, str | None, str | None]] | None:
        counts = tally(await tasks_of(api, moved["id"]))
        return counts if all(status == "closed" for _, status, _, _ in counts) else None

    assert await eventually(archived_closed) == Counter(
        {(sku1, "closed", "archived", new_owner["id"]): 5}
    )


async def _has(api: httpx.AsyncClient, customer_id: str, count: int) -> bool:
    return len(await tasks_of(api, customer_id)) == count


async def test_file_events_are_applied_once_by_the_files_version_not_claimed_one_by_one(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    """Engagement's copy applies a file's event only above the version it holds (a redelivery
    changes nothing: the test above), so it keeps no claim row per file event, which an import
    of a hundred thousand files would write as many of; a purchase is still claimed."""
    store = await create_store(api)
    staff = await create_staff(api, store_id=store["id"])
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    changed = await api.patch(f"/customers/{customer['id']}", json={"owner_staff_id": staff["id"]})
    assert changed.status_code == 200, changed.text
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    customers = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    engagement = await asyncpg.connect(asyncpg_dsn(stack.database_url("engagement")))
    try:
        sent = {
            r["type"]: r["event_id"]
            for r in await customers.fetch(
                "SELECT envelope->>'type' AS type, event_id FROM outbox_event WHERE key = $1",
                customer["id"],
            )
        }
        assert {"customer.registered", "customer.updated", "purchase.recorded"} <= set(sent)

        async def applied() -> bool:
            version = await engagement.fetchval(
                "SELECT version FROM customer_file WHERE customer_id = $1", customer["id"]
            )
            claimed = await engagement.fetchval(
                "SELECT count(*) FROM processed_event WHERE event_id = $1",
                sent["purchase.recorded"],
            )
            return version == 2 and claimed == 1

        assert await eventually(applied, timeout=60)
        claims = await engagement.fetchval(
            "SELECT count(*) FROM processed_event WHERE event_id = ANY($1::text[])",
            [sent["customer.registered"], sent["customer.updated"]],
        )
        assert claims == 0
    finally:
        await customers.close()
        await engagement.close()
