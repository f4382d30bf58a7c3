"""DOMAIN.md §3's ladder, loyalty and lifecycle end to end (real broker, through the gateway):
purchases recorded through the API, member-event signals published on crm.engagement.v1 by the
test (as the engagement service will), a referrer and competitors' products from the customer
file; the score, its history, the manager's floor, and the customer service's read copy."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from crm_libs.events.envelope import EventEnvelope, Topics
from tests.broker import Records, at_least, publish, records_of
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_product,
    create_store,
    record_purchase,
    score_with_purchases,
    scored_customer,
    sign_in,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ids_of(records: Records) -> list[str]:
    return [str(EventEnvelope.model_validate_json(r.value).event_id) for r in records]


def member_event(
    type_: str, customer: dict[str, Any], *, event_id: str, at: datetime
) -> EventEnvelope:
    """``event.attended`` / ``event.guest_brought`` as deploy/README.md fixes them."""
    when = "attended_at" if type_ == "event.attended" else "brought_at"
    return EventEnvelope(
        type=type_,
        store_id=customer["store_id"],
        customer_id=customer["id"],
        payload={"event_id": event_id, when: at.isoformat()},
    )


async def score(api: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    response = await api.get(f"/customers/{customer_id}/score")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def score_where(api: httpx.AsyncClient, customer_id: str, **expected: Any) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        got = await score(api, customer_id)
        return got if all(got[k] == v for k, v in expected.items()) else None

    return await eventually(reached, timeout=60)


async def history(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    """The whole history, newest first, read a page of two at a time (the cursor)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await api.get(f"/customers/{customer_id}/score/history", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def changes(entries: list[dict[str, Any]], field: str) -> list[tuple[Any, Any, str]]:
    """A field's changes, oldest first."""
    return [
        (e["previous"], e["value"], e["cause"]) for e in reversed(entries) if e["field"] == field
    ]


def expected_first_lifecycle(bought_at: datetime) -> str:
    """A first purchase in the store's current local year is new this year, else the customer
    is in service without a purchase this year."""
    this_year = datetime.now(SHANGHAI).year
    return (
        "new_this_year"
        if bought_at.astimezone(SHANGHAI).year == this_year
        else ("in_service_not_bought")
    )


async def copy_of(stack: LocalStack, customer_id: str) -> tuple[Any, ...]:
    """The customer service's read copy of the score (not shown on the file)."""
    db = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        row = await db.fetchrow(
            "SELECT value_tier, ladder_level, lifecycle FROM customer WHERE id = $1", customer_id
        )
    finally:
        await db.close()
    return tuple(row) if row else ()


async def test_ladder_from_purchases_member_events_referrals_and_the_managers_floor(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    product = await create_product(api, days_per_unit=60)
    referrer = await create_customer(api, store_id=store["id"])
    referred = await create_customer(api, store_id=store["id"], referrer_id=referrer["id"])
    attendee = await create_customer(api, store_id=store["id"])
    host = await create_customer(api, store_id=store["id"])  # brings a guest
    iron = await create_customer(api, store_id=store["id"])
    buyers = (referrer, referred, attendee, host, iron)
    bought_at = datetime.now(UTC) - timedelta(minutes=5)
    for customer in buyers:
        await record_purchase(
            api, customer_id=customer["id"], sku=product["sku"], purchased_at=bought_at.isoformat()
        )
    for customer in buyers:
        await score_with_purchases(api, customer["id"])
    lifecycle = expected_first_lifecycle(bought_at)
    # The referred file bought: its referrer is B; the others have bought once.
    await score_where(api, referrer["id"], ladder_level="B", ladder_score=80)
    for customer in (referred, attendee, host, iron):
        got = await score_where(api, customer["id"], ladder_level="0", lifecycle=lifecycle)
        assert got["loyalty"] == "floating" and got["ladder_score"] == 0
        # Scored once the store has five buyers (scores/rfm.py), until then none.
        assert set(got["rfm"]) == {"r", "f", "m", "segment"}

    # The engagement service's signals, one of them delivered twice.
    evening = datetime.now(UTC) - timedelta(days=2)
    attended = member_event("event.attended", attendee, event_id=f"ev-{uuid.uuid4()}", at=evening)
    guest = member_event("event.guest_brought", host, event_id=f"ev-{uuid.uuid4()}", at=evening)
    replayed = attended.model_copy(update={"event_id": uuid.uuid4()})
    await publish(stack, Topics.ENGAGEMENT, attended, guest, replayed)
    await score_where(api, attendee["id"], ladder_level="D", ladder_score=40)
    await score_where(api, host["id"], ladder_level="C", ladder_score=60)

    attendee_history = await history(api, attendee["id"])
    assert changes(attendee_history, "ladder_level") == [
        (None, "0", "purchase"),
        ("0", "D", "event_attended"),  # once: the second delivery added nothing
    ]
    assert changes(attendee_history, "lifecycle") == [(None, lifecycle, "purchase")]
    assert changes(attendee_history, "value_tier")[0][::2] == ("prospect", "purchase")
    # B when the referred file bought: after the referrer's own purchase, or with it.
    assert changes(await history(api, referrer["id"]), "ladder_level")[-1] in {
        ("0", "B", "referral"),
        (None, "B", "purchase"),
    }

    # The manager's floor: staff may not set it, the store's manager may.
    manager = await create_account(api, role="store_manager", store_id=store["id"])
    staff = await create_account(api, role="staff", store_id=store["id"])
    floor = {"level": "A", "reason": "员工顾客"}
    url = f"/customers/{iron['id']}/ladder-floor"
    async with client_as(api, token=(await sign_in(api, staff))["access_token"]) as as_staff:
        assert (await as_staff.put(url, json=floor)).status_code == 403
    async with client_as(api, token=(await sign_in(api, manager))["access_token"]) as as_manager:
        bad = await as_manager.put(url, json={"level": "B", "reason": "x"})
        assert bad.status_code == 422
        put = await as_manager.put(url, json=floor)
        assert put.status_code == 200, put.text
        assert put.json()["ladder_level"] == "A" and put.json()["ladder_floor"] == "A"
        assert (await score(api, iron["id"]))["ladder_score"] == 100
        assert (await as_manager.delete(url)).status_code == 204
    assert (await score(api, iron["id"]))["ladder_level"] == "0"
    assert changes(await history(api, iron["id"]), "ladder_level")[-2:] == [
        ("0", "A", "floor_set"),
        ("A", "0", "floor_cleared"),
    ]
    audit = await api.get("/audit", params={"customer_id": iron["id"]})
    assert {"set_ladder_floor", "clear_ladder_floor"} <= {
        e["action"] for e in audit.json()["items"]
    }

    # The customer service's copy follows the published changes.
    async def copied() -> bool:
        return (
            (await copy_of(stack, attendee["id"]))[1:] == ("D", lifecycle)
            and (await copy_of(stack, host["id"]))[1] == "C"
            and (await copy_of(stack, iron["id"]))[1] == "0"
        )

    await eventually(copied, timeout=60)
    listed = await api.get("/customers", params={"store_id": store["id"], "lifecycle": lifecycle})
    assert listed.status_code == 200, listed.text
    assert {c["id"] for c in buyers} <= {c["id"] for c in listed.json()["items"]}


async def test_competitors_products_make_a_switcher_and_no_health_text_travels(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    product = await create_product(api)
    brand = f"某品牌鱼油{uuid.uuid4().hex[:6]}"
    customer = await create_customer(
        api,
        store_id=store["id"],
        health_consent=True,
        health={"other_health_products": [brand], "allergies": ["青霉素"]},
    )
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    await score_with_purchases(api, customer["id"])
    await score_where(api, customer["id"], loyalty="switcher")
    patched = await api.patch(
        f"/customers/{customer['id']}", json={"health": {"allergies": ["青霉素"]}}
    )
    assert patched.status_code == 200, patched.text
    await score_where(api, customer["id"], loyalty="floating")

    records = await records_of(stack, Topics.CUSTOMERS, key=customer["id"], until=at_least(2))
    seen = [r.value for r in records]
    files = [EventEnvelope.model_validate_json(raw).payload["file"] for raw in seen]
    assert [f["uses_competitor_products"] for f in files[:2]] == [True, False]
    for raw in seen:  # ``changed`` may name the health field, never hold what it says
        text = raw.decode()
        assert brand not in text and "青霉素" not in text


async def test_a_malformed_member_event_is_dead_lettered_and_others_are_ignored(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store, product, customer, _ = await scored_customer(api)
    malformed = EventEnvelope(
        type="event.attended",
        store_id=store["id"],
        customer_id=customer["id"],
        payload={"attended_at": datetime.now(UTC).isoformat()},  # no event_id
    )
    # A type of the topic's contract that is not scoring's (the customer service reads visits):
    # skipped, not dead-lettered.
    other = EventEnvelope(
        type="visit.recorded",
        store_id=store["id"],
        customer_id=customer["id"],
        payload={"visit_id": f"V-{uuid.uuid4()}", "staff_id": None, "collected": {}},
    )
    attended = member_event(
        "event.attended", customer, event_id=f"ev-{uuid.uuid4()}", at=datetime.now(UTC)
    )
    await publish(stack, Topics.ENGAGEMENT, malformed, other, attended)
    await score_where(api, customer["id"], ladder_level="D")

    records = await records_of(
        stack,
        Topics.dead_letter(Topics.ENGAGEMENT),
        until=lambda records: str(malformed.event_id) in ids_of(records),
    )
    dead = ids_of(records)
    assert str(other.event_id) not in dead and str(attended.event_id) not in dead
