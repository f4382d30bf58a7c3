"""crm.customers.v1 as the customer service publishes it (real broker): registered, updated with
``changed`` and archived, each with the file of deploy/README.md's contract; and engagement's
tasks following an owner a manager changed."""

from typing import Any

import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import EventEnvelope, Topics
from tests.broker import at_least, records_of
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_product,
    create_staff,
    create_store,
    record_purchase,
    sign_in,
)

FILE_KEYS = {
    "timezone",
    "status",
    "owner_staff_id",
    "birthday",
    "birthday_calendar",
    "wedding_anniversary",
    "relations",
    "referrer_id",
    "uses_competitor_products",
    "district",
    "consents",
    "version",
}


async def events_of(stack: LocalStack, customer_id: str, count: int) -> list[EventEnvelope]:
    """The customer's events on crm.customers.v1, once ``count`` of them arrived."""
    records = await records_of(stack, Topics.CUSTOMERS, key=customer_id, until=at_least(count))
    return [EventEnvelope.model_validate_json(r.value) for r in records]


async def test_registration_change_and_archive_publish_the_file(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api, timezone="Asia/Urumqi")
    owner = await create_staff(api, store_id=store["id"])
    referrer = await create_customer(api, store_id=store["id"])
    spouse = await create_customer(api, store_id=store["id"])
    customer = await create_customer(
        api,
        store_id=store["id"],
        phone="13812345678",
        owner_staff_id=owner["id"],
        birthday="1950-08-15",
        birthday_calendar="lunar",
        wedding_anniversary="1975-05-01",
        referrer_id=referrer["id"],
        address={"city": "乌鲁木齐", "district": "天山区", "street": "人民路1号"},
    )
    related = await api.post(
        f"/customers/{customer['id']}/relations",
        json={"related_customer_id": spouse["id"], "kind": "spouse"},
    )
    assert related.status_code == 201, related.text
    patched = await api.patch(
        f"/customers/{customer['id']}",
        json={"consents": {"sms": {"granted": True, "channel": "in_store"}}, "ethnicity": "回族"},
    )
    assert patched.status_code == 200
    assert (await api.delete(f"/customers/{customer['id']}")).status_code == 204

    events = await events_of(stack, customer["id"], 3)
    by_type = {e.type: e for e in events}
    assert [e.type for e in events][:1] == ["customer.registered"]
    registered = by_type["customer.registered"].payload
    assert registered["timezone"] == "Asia/Urumqi"  # where scoring reads it
    file = registered["file"]
    assert set(file) == FILE_KEYS
    # The solar date of birth of lunar 1950-08-15, and the calendar it is kept in.
    assert (file["birthday"], file["birthday_calendar"]) == ("1950-09-26", "lunar")
    assert file["owner_staff_id"] == owner["id"]
    assert file["referrer_id"] == referrer["id"]
    assert file["wedding_anniversary"] == "1975-05-01"
    assert file["district"] == "天山区"  # the address's district alone, for the analysis
    assert file["consents"] == {"sms": {"granted": False, "at": None, "channel": None}}
    assert file["version"] == 1 and file["status"] == "active"
    # No personal data on the wire.
    raw = str([e.payload for e in events])
    assert "12345678" not in raw and "人民路" not in raw and "王芳" not in raw

    updated = by_type["customer.updated"].payload
    assert updated["changed"] == ["consents", "ethnicity"]
    assert updated["file"]["consents"]["sms"]["granted"] is True
    assert updated["file"]["consents"]["sms"]["channel"] == "in_store"
    assert updated["file"]["relations"] == [{"customer_id": spouse["id"], "kind": "spouse"}]
    assert updated["file"]["version"] == patched.json()["version"]

    archived = by_type["customer.archived"].payload["file"]
    assert archived["status"] == "archived"
    assert archived["version"] == patched.json()["version"] + 1


async def _tasks(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    response = await api.get("/tasks", params={"customer_id": customer_id})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_follow_up_tasks_go_to_the_owner_a_manager_named(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    product = await create_product(api)
    first_owner, new_owner, seller = [await create_staff(api, store_id=store["id"]) for _ in "abc"]
    customer = await create_customer(api, store_id=store["id"], owner_staff_id=first_owner["id"])
    manager_account = await create_account(api, role="store_manager", store_id=store["id"])
    token = (await sign_in(api, manager_account))["access_token"]
    async with client_as(api, token=token) as manager:
        moved = await manager.patch(
            f"/customers/{customer['id']}", json={"owner_staff_id": new_owner["id"]}
        )
        assert moved.status_code == 200, moved.text
    await record_purchase(
        api, customer_id=customer["id"], sku=product["sku"], staff_id=seller["id"]
    )

    async def planned() -> list[dict[str, Any]] | None:
        tasks = await _tasks(api, customer["id"])
        return tasks if len(tasks) >= 5 else None

    tasks = await eventually(planned, timeout=60)
    assert {t["assignee_staff_id"] for t in tasks} == {new_owner["id"]}
