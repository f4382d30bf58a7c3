"""Member events end to end through the gateway, the real broker and the four services: an
event scheduled, read with its counts and cancelled; invitations one by one and by scoring's
segment; replies; check-ins with their rules (once, capacity, walk-ins); guests linked to their
file or opened as a prospect referred by the customer who brought them (also when the customer
service was down at check-in); the ladder moving in scoring; purchases tagged with an event."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from tests.builders import (
    caller_as,
    client_as,
    create_customer,
    create_product,
    create_store,
    days_ago,
    record_purchase,
    score_of,
    score_with_purchases,
    scored_customer,
)


def phone() -> str:
    """A mobile number of its own for each guest (138 and eight digits)."""
    return f"138{uuid.uuid4().int % 10**8:08d}"


async def schedule(
    client: httpx.AsyncClient, store_id: str, *, capacity: int = 50, days: int = 7
) -> dict[str, Any]:
    body = {
        "store_id": store_id,
        "kind": "gathering",
        "title": "联谊会",
        "starts_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
        "place": "Store hall",
        "capacity": capacity,
    }
    response = await client.post("/events", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def invite(client: httpx.AsyncClient, event_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/events/{event_id}/invitations", json=body)


async def invited(client: httpx.AsyncClient, event_id: str, customer_ids: list[str]) -> None:
    """Invite the customers once engagement holds their files (crm.customers.v1)."""

    async def done() -> bool:
        return (await invite(client, event_id, customer_ids=customer_ids)).status_code == 200

    await eventually(done)


async def check_in(
    client: httpx.AsyncClient, event_id: str, customer_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/events/{event_id}/checkins", json={"customer_id": customer_id, **body}
    )


async def counts(client: httpx.AsyncClient, event_id: str) -> dict[str, int]:
    response = await client.get(f"/events/{event_id}")
    assert response.status_code == 200, response.text
    found: dict[str, int] = response.json()["counts"]
    return found


async def test_an_event_is_scheduled_read_listed_and_cancelled(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    manager = await caller_as(api, "store_manager", store_id=store["id"])
    staff = await caller_as(api, "staff", store_id=store["id"])
    async with manager, staff:
        event = await schedule(manager, store["id"], capacity=30)
        assert event["status"] == "scheduled" and event["capacity"] == 30
        assert event["counts"]["invited"] == 0 and event["counts"]["places_left"] == 30
        # Staff do not schedule or cancel; they read.
        refused = await staff.post("/events", json={**event, "kind": "lecture"})
        assert refused.status_code == 403
        listed = await staff.get("/events", params={"store_id": store["id"]})
        assert [e["id"] for e in listed.json()["items"]] == [event["id"]]
        bad = await manager.post("/events", json={**_body(store["id"]), "capacity": 0})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("capacity")
        cancelled = await manager.delete(f"/events/{event['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        again = await manager.delete(f"/events/{event['id']}")
        assert again.json()["cancelled_at"] == cancelled.json()["cancelled_at"]
        customer = await create_customer(api, store_id=store["id"])
        late = await invite(staff, event["id"], customer_ids=[customer["id"]])
        assert late.status_code == 409


def _body(store_id: str) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "kind": "lecture",
        "title": "科普讲座",
        "starts_at": datetime.now(UTC).isoformat(),
        "place": "Hall",
        "capacity": 10,
    }


async def test_invitations_one_by_one_and_by_segment_once_each_with_replies(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    product = await create_product(api)
    buyers = [await create_customer(api, store_id=store["id"]) for _ in range(2)]
    prospect = await create_customer(api, store_id=store["id"])
    for buyer in buyers:
        await record_purchase(api, customer_id=buyer["id"], sku=product["sku"])
    for buyer in buyers:
        await score_with_purchases(api, buyer["id"])
    staff = await caller_as(api, "staff", store_id=store["id"])
    async with staff:
        event = await schedule(api, store["id"])
        await invited(staff, event["id"], [buyers[0]["id"]])
        unknown = await invite(staff, event["id"], customer_ids=[buyers[0]["id"], "nobody"])
        assert unknown.status_code == 422
        assert [e["field"] for e in unknown.json()["errors"]] == ["customer_ids.1"]
        twice = await invite(staff, event["id"], customer_ids=[buyers[0]["id"]])
        assert twice.json() | {"customer_ids": []} == {
            "invited": 0,
            "already_invited": 1,
            "left_out": 0,
            "customer_ids": [],
        }
        # The buyers are on the ladder's first rung; the prospect has no ladder.
        segment = await invite(staff, event["id"], segment={"ladder": "0"})
        assert segment.status_code == 200, segment.text
        assert segment.json()["customer_ids"] == [buyers[1]["id"]]
        assert segment.json()["already_invited"] == 1
        bad = await invite(staff, event["id"], segment={"ladder": "Z"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith("segment")
        both = await invite(
            staff, event["id"], customer_ids=[prospect["id"]], segment={"ladder": "0"}
        )
        assert both.status_code == 422

        reply = await staff.patch(
            f"/events/{event['id']}/invitations/{buyers[0]['id']}", json={"reply": "yes"}
        )
        assert reply.status_code == 200 and reply.json()["reply"] == "yes"
        await staff.patch(
            f"/events/{event['id']}/invitations/{buyers[1]['id']}", json={"reply": "maybe"}
        )
        not_invited = await staff.patch(
            f"/events/{event['id']}/invitations/{prospect['id']}", json={"reply": "no"}
        )
        assert not_invited.status_code == 404
        shown = await counts(staff, event["id"])
        assert (shown["invited"], shown["replied_yes"], shown["replied_maybe"]) == (2, 1, 1)
        listed = await staff.get(f"/events/{event['id']}/invitations", params={"reply": "yes"})
        assert [i["customer_id"] for i in listed.json()["items"]] == [buyers[0]["id"]]


async def test_check_in_once_within_capacity_walk_ins_flagged_and_guests_filed(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    inviter = await create_customer(api, store_id=store["id"])
    other = await create_customer(api, store_id=store["id"])
    walker = await create_customer(api, store_id=store["id"])
    known_phone = phone()
    known_guest = await create_customer(api, store_id=store["id"], phone=known_phone)
    staff = await caller_as(api, "staff", store_id=store["id"])
    async with staff:
        event = await schedule(api, store["id"], capacity=4)
        await invited(staff, event["id"], [inviter["id"], other["id"]])

        uninvited = await check_in(staff, event["id"], walker["id"])
        assert uninvited.status_code == 409 and "walk_in" in uninvited.json()["detail"]
        walk_in = await check_in(staff, event["id"], walker["id"], walk_in=True)
        assert walk_in.status_code == 201 and walk_in.json()["walk_in"] is True

        new_phone = phone()
        guests = [{"name": "张三", "phone": new_phone}, {"name": "李四", "phone": known_phone}]
        too_many = await check_in(
            staff, event["id"], inviter["id"], guests=[*guests, {"name": "王五", "phone": phone()}]
        )
        assert too_many.status_code == 409 and "capacity" in too_many.json()["detail"]
        bad_phone = await check_in(
            staff, event["id"], inviter["id"], guests=[{"name": "赵六", "phone": "12"}]
        )
        assert bad_phone.status_code == 422
        assert bad_phone.json()["errors"][0]["field"] == "guests.0.phone"

        done = await check_in(staff, event["id"], inviter["id"], guests=guests)
        assert done.status_code == 201, done.text
        created, linked = done.json()["guests"]
        assert created["file"] == "created" and linked == {**linked, "file": "linked"}
        assert linked["customer_id"] == known_guest["id"]
        twice = await check_in(staff, event["id"], inviter["id"])
        assert twice.status_code == 409

        # The event is full: the other invited customer finds no place.
        full = await check_in(staff, event["id"], other["id"])
        assert full.status_code == 409 and "capacity" in full.json()["detail"]
        shown = await counts(staff, event["id"])
        assert (shown["checked_in"], shown["walk_ins"], shown["guests"]) == (2, 1, 2)
        assert shown["places_left"] == 0

    guest_file = (await api.get(f"/customers/{created['customer_id']}")).json()
    assert guest_file["referrer_id"] == inviter["id"]
    assert guest_file["prospect"]["stage"] == "attended"
    assert guest_file["source"]["activity_id"] == event["id"]
    referrals = (await api.get(f"/customers/{inviter['id']}/referrals")).json()["items"]
    assert [r["customer_id"] for r in referrals] == [created["customer_id"]]


async def test_attendance_and_a_guest_move_the_ladder_and_orders_are_tagged(
    api: httpx.AsyncClient,
) -> None:
    store, product, customer, before = await scored_customer(api)
    assert before["ladder_level"] == "0"
    event = await schedule(api, store["id"])
    await invited(api, event["id"], [customer["id"]])
    response = await check_in(
        api, event["id"], customer["id"], guests=[{"name": "老周", "phone": phone()}]
    )
    assert response.status_code == 201, response.text

    async def brought_a_guest() -> dict[str, Any] | None:
        score = await score_of(api, customer["id"])
        return score if score and score["ladder_level"] == "C" else None

    after = await eventually(brought_a_guest)
    assert after["ladder_score"] == 60

    # An order taken at the event: the customer service knows the event from its announcement.
    async def tagged() -> httpx.Response | None:
        sale = await api.post(
            f"/customers/{customer['id']}/purchases",
            json={
                "purchased_at": days_ago(0),
                "items": [{"sku": product["sku"], "qty": 1}],
                "member_event_id": event["id"],
            },
        )
        return sale if sale.status_code == 201 else None

    sale = await eventually(tagged)
    assert sale.json()["member_event_id"] == event["id"]

    async def refused(member_event_id: str, reason: str) -> bool:
        sale = await api.post(
            f"/customers/{customer['id']}/purchases",
            json={
                "purchased_at": days_ago(0),
                "items": [{"sku": product["sku"], "qty": 1}],
                "member_event_id": member_event_id,
            },
        )
        body = sale.json()
        return (
            sale.status_code == 422
            and body["errors"][0]["field"] == "member_event_id"
            and reason in body["errors"][0]["message"]
        )

    assert await refused("no-such-event", "no member event")
    # Another store's event is not one of this customer's store.
    elsewhere = await schedule(api, (await create_store(api))["id"])
    await eventually(lambda: refused(elsewhere["id"], "no member event"))
    await api.delete(f"/events/{event['id']}")
    await eventually(lambda: refused(event["id"], "cancelled"))


async def test_a_guest_checked_in_while_the_customer_service_is_down_is_filed_later(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    inviter = await create_customer(api, store_id=store["id"])
    event = await schedule(api, store["id"])
    await invited(api, event["id"], [inviter["id"]])
    guest_phone = phone()
    stack.stop_service("customer")
    try:
        response = await check_in(
            api, event["id"], inviter["id"], guests=[{"name": "钱七", "phone": guest_phone}]
        )
        assert response.status_code == 201, response.text
        (guest,) = response.json()["guests"]
        assert guest == {**guest, "file": "pending", "customer_id": None}
    finally:
        stack.start_service("customer")
        stack.wait_healthy("customer")

    async def filed() -> list[dict[str, Any]] | None:
        found = await api.get(
            "/customers", params={"store_id": store["id"], "q": guest_phone, "status": "active"}
        )
        return found.json()["items"] if found.status_code == 200 and found.json()["items"] else None

    (guest_file,) = await eventually(filed, timeout=90)
    full = (await api.get(f"/customers/{guest_file['id']}")).json()
    assert full["referrer_id"] == inviter["id"]
    assert (await counts(api, event["id"]))["guests"] == 1


@pytest.mark.parametrize("role", ["store_manager", "staff", "partner"])
async def test_another_store_never_reaches_an_event(api: httpx.AsyncClient, role: str) -> None:
    store_b = await create_store(api)
    event = await schedule(api, store_b["id"])
    store_a = await create_store(api)
    if role == "partner":
        key = (await api.post("/api-keys", json={"store_id": store_a["id"], "name": "a"})).json()
        caller = client_as(api, key=key["key"])
    else:
        caller = await caller_as(api, role, store_id=store_a["id"])
    async with caller:
        assert (await caller.get(f"/events/{event['id']}")).status_code == 404
        listed = await caller.get("/events")
        assert event["id"] not in listed.text
        other = await caller.get("/events", params={"store_id": store_b["id"]})
        assert other.status_code in (403, 404)
