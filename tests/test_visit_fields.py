"""Fields collected on a visit reach the customer's file (real broker): ``visit.recorded`` on
crm.engagement.v1, produced as engagement will, goes through the rules of a PATCH; refused values
are skipped and named, fields a visit may not set are ignored, the change is announced as
``customer.updated`` and kept in the file's history with the visit and the staff member."""

from typing import Any

import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import EventEnvelope, Topics
from tests.broker import publish, records_of
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_staff,
    create_store,
    days_ago,
    sign_in,
    unique,
)
from tests.test_customer_profile_events import events_of


def visit(
    customer: dict[str, Any], *, staff_id: str, in_store: str | None = None, **collected: Any
) -> EventEnvelope:
    """A visit to ``customer`` announced for its store (or ``in_store``), with ``collected``."""
    return EventEnvelope(
        type="visit.recorded",
        store_id=in_store or customer["store_id"],
        customer_id=customer["id"],
        payload={
            "visit_id": unique("V"),
            "staff_id": staff_id,
            "occurred_at": days_ago(0),
            "collected": collected,
        },
    )


async def history(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/customers/{customer_id}/history")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def history_of_length(
    api: httpx.AsyncClient, customer_id: str, count: int
) -> list[dict[str, Any]]:
    async def reached() -> list[dict[str, Any]] | None:
        items = await history(api, customer_id)
        return items if len(items) >= count else None

    return await eventually(reached, timeout=60)


async def dead_letters_of(stack: LocalStack, customer_id: str) -> list[EventEnvelope]:
    records = await records_of(stack, Topics.dead_letter(Topics.ENGAGEMENT), key=customer_id)
    return [EventEnvelope.model_validate_json(r.value) for r in records]


async def test_a_visits_fields_go_into_the_file_through_the_patch_rules(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store, elsewhere = await create_store(api), await create_store(api)
    owner, visitor = [await create_staff(api, store_id=store["id"]) for _ in "ab"]
    stranger = await create_staff(api, store_id=elsewhere["id"])
    customer = await create_customer(
        api,
        store_id=store["id"],
        phone="13812340002",
        owner_staff_id=owner["id"],
        wedding_anniversary="1975-05-01",
    )
    recorded = visit(
        customer,
        staff_id=visitor["id"],
        address={"city": "杭州", "street": "文一路8号"},
        deep={"hobbies": ["钓鱼", "下棋"], "contact_time": "上午"},
        prospect={"stage": "contacted"},
        # Refused, each by its rule: married before this birthday, not a phone number, not a
        # gender, not a field of the file.
        birthday="1980-01-01",
        phone="12345",
        gender="unknown",
        favourite_food="饺子",
        # Not a visit's to set.
        store_id=elsewhere["id"],
        owner_staff_id=stranger["id"],
        status="archived",
    )
    await publish(stack, Topics.ENGAGEMENT, recorded)

    [entry] = await history_of_length(api, customer["id"], 1)
    assert entry["origin"] == "visit"
    assert entry["origin_id"] == recorded.payload["visit_id"]
    assert entry["staff_id"] == visitor["id"]
    assert entry["changed"] == ["address", "deep", "prospect"]
    assert [s["field"] for s in entry["skipped"]] == [
        "birthday",
        "favourite_food",
        "gender",
        "phone",
    ]
    # The trail never quotes a refused phone number.
    assert "12345" not in str(entry["skipped"])
    assert entry["ignored"] == ["owner_staff_id", "status", "store_id"]
    assert entry["version"] == customer["version"] + 1

    file = (await api.get(f"/customers/{customer['id']}")).json()
    assert file["address"]["street"] == "文一路8号"
    assert file["deep"]["hobbies"] == ["钓鱼", "下棋"]
    assert file["prospect"]["stage"] == "contacted"
    assert file["version"] == customer["version"] + 1
    unchanged = ("store_id", "owner_staff_id", "status", "phone", "birthday", "gender")
    assert {k: file[k] for k in unchanged} == {k: customer[k] for k in unchanged}

    [_, updated] = await events_of(stack, customer["id"], 2)
    assert updated.type == "customer.updated"
    assert updated.payload["changed"] == ["address", "deep", "prospect"]
    assert updated.payload["file"]["version"] == file["version"]

    # The same event again, a visit naming the customer under another store, a prospect moved
    # back (a staff member's PATCH may not), then a plain visit: only the last one changes.
    backwards = visit(customer, staff_id=visitor["id"], prospect={"stage": "collected"})
    foreign = visit(customer, staff_id=stranger["id"], in_store=elsewhere["id"], ethnicity="回族")
    last = visit(customer, staff_id=visitor["id"], ethnicity="汉族")
    await publish(stack, Topics.ENGAGEMENT, recorded, foreign, backwards, last)
    items = await history_of_length(api, customer["id"], 3)
    assert [i["origin_id"] for i in items] == [
        recorded.payload["visit_id"],
        backwards.payload["visit_id"],
        last.payload["visit_id"],
    ]
    assert items[1]["changed"] == [] and items[1]["skipped"][0]["field"] == "prospect"
    assert items[2]["changed"] == ["ethnicity"]
    file = (await api.get(f"/customers/{customer['id']}")).json()
    assert (file["ethnicity"], file["prospect"]["stage"]) == ("汉族", "contacted")
    assert file["version"] == customer["version"] + 2
    assert await dead_letters_of(stack, customer["id"]) == []


async def test_a_visit_event_without_its_visit_is_dead_lettered_alone(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    visitor = await create_staff(api, store_id=store["id"])
    customer = await create_customer(api, store_id=store["id"])
    broken = EventEnvelope(
        type="visit.recorded",
        store_id=store["id"],
        customer_id=customer["id"],
        payload={"collected": {"ethnicity": "回族"}},
    )
    await publish(
        stack, Topics.ENGAGEMENT, broken, visit(customer, staff_id=visitor["id"], ethnicity="汉族")
    )
    [entry] = await history_of_length(api, customer["id"], 1)
    assert entry["changed"] == ["ethnicity"]
    dead = await dead_letters_of(stack, customer["id"])
    assert [d.event_id for d in dead] == [broken.event_id]


async def test_the_history_is_the_stores_own(api: httpx.AsyncClient) -> None:
    mine, theirs = await create_store(api), await create_store(api)
    customer = await create_customer(api, store_id=theirs["id"])
    account = await create_account(api, role="staff", store_id=mine["id"])
    async with client_as(api, token=(await sign_in(api, account))["access_token"]) as staff:
        response = await staff.get(f"/customers/{customer['id']}/history")
    assert response.status_code == 404
