"""Campaigns through the gateway with the real broker: each kind choosing its customers (a lunar
birthday on this year's solar date, a festival's date from the calendar, miss_you's exact
cut-off, scoring's segment), a template of another category refused, the preview's counts and
exclusions, a send handed to the job once whatever is retried, and the campaign's counts moving
as the console provider delivers; roles and another store kept out."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm_devstack.fixtures import eventually
from engagement_service.care.special_days import (
    lunar_birth_of,
    lunar_birthday_in_year,
    shared_occasions,
)
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_product,
    create_staff,
    create_store,
    days_ago,
    record_purchase,
    score_with_purchases,
    sign_in,
    unique,
)
from tests.test_care_messages import CONSENTED, a_mobile, daytime_zone, template


async def campaign(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/campaigns", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def preview_once(
    api: httpx.AsyncClient, campaign_id: str, recipients: int, **body: Any
) -> dict[str, Any]:
    """The preview once engagement holds the files it should find (they arrive by event)."""

    async def ready() -> dict[str, Any] | None:
        response = await api.post(f"/campaigns/{campaign_id}/preview", json=body)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found if found["recipients"] == recipients else None

    return await eventually(ready)


def lunar_birthday_today(today: date) -> str:
    """A lunar birth date (as the customer file writes it: lunar year, month and day) whose
    birthday falls on ``today`` this year: today's lunar month and day, in a year whose month
    has that day."""
    _, month, day = lunar_birth_of(today)
    for year in range(1970, 1990):
        if (
            lunar_birthday_in_year(month, day, year) - lunar_birthday_in_year(month, 1, year)
        ).days == day - 1:
            return f"{year}-{month:02d}-{day:02d}"
    raise AssertionError("no year with that lunar day")


async def test_a_birthday_campaign_previewed_sent_once_and_counted(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api, timezone=daytime_zone())
    today = datetime.now(ZoneInfo(store["timezone"])).date()
    birthday = await template(api, store["id"], "birthday", "{form_of_address}，生日快乐！")
    season = await template(api, store["id"], "season", "天凉了，注意添衣")
    refused = await api.post(
        "/campaigns",
        json={
            "kind": "birthday",
            "template_id": season,
            "store_id": store["id"],
            "date_from": today.isoformat(),
        },
    )
    assert refused.status_code == 422
    assert "season" in refused.json()["detail"] and "birthday" in refused.json()["detail"]

    solar = await create_customer(
        api,
        store_id=store["id"],
        name="张丽",
        gender="female",
        phone=a_mobile(),
        birthday=today.replace(year=1980).isoformat(),
        birthday_calendar="solar",
        **CONSENTED,
    )
    lunar = await create_customer(
        api,
        store_id=store["id"],
        name="刘强",
        gender="male",
        phone=a_mobile(),
        birthday=lunar_birthday_today(today),
        birthday_calendar="lunar",
    )
    # Today's solar month and day kept as a lunar birthday's would be a month later at least.
    _, lunar_month, _ = lunar_birth_of(today)
    lunar_other = await create_customer(
        api,
        store_id=store["id"],
        phone=a_mobile(),
        birthday=f"1980-{lunar_month % 12 + 1:02d}-10",
        birthday_calendar="lunar",
    )
    tomorrow = await create_customer(
        api,
        store_id=store["id"],
        phone=a_mobile(),
        birthday=(today + timedelta(days=1)).replace(year=1980).isoformat(),
    )
    no_phone = await create_customer(
        api, store_id=store["id"], birthday=today.replace(year=1981).isoformat()
    )
    withdrawn = await create_customer(
        api,
        store_id=store["id"],
        phone=a_mobile(),
        birthday=today.replace(year=1982).isoformat(),
        consents={"sms": {"granted": False, "channel": "sms"}},
    )
    # Given, then withdrawn: only a withdrawal is an opt-out.
    await api.patch(
        f"/customers/{withdrawn['id']}",
        json={"consents": {"sms": {"granted": True, "channel": "sms"}}},
    )
    await api.patch(
        f"/customers/{withdrawn['id']}",
        json={"consents": {"sms": {"granted": False, "channel": "sms"}}},
    )
    created = await campaign(
        api,
        {
            "kind": "birthday",
            "template_id": birthday,
            "store_id": store["id"],
            "date_from": today.isoformat(),
        },
    )
    assert created["status"] == "draft"
    expected = 4

    async def withdrawal_seen() -> dict[str, Any] | None:
        found = await preview_once(api, created["id"], expected)
        return found if found["excluded"].get("consent_withdrawn") == 1 else None

    preview = await eventually(withdrawal_seen)
    assert preview["excluded"] == {"no_phone": 1, "consent_withdrawn": 1}
    assert preview["would_queue"] == expected - 2
    texts = {m["customer_id"]: m["text"] for m in preview["messages"]}
    assert texts[solar["id"]] == "张女士，生日快乐！"
    assert texts[lunar["id"]] == "刘先生，生日快乐！"
    assert tomorrow["id"] not in texts and lunar_other["id"] not in texts
    assert {e["customer_id"]: e["reason"] for e in preview["exclusions"]} == {
        no_phone["id"]: "no_phone",
        withdrawn["id"]: "consent_withdrawn",
    }
    # Pages: one at a time, in customer order, the same entries.
    first = (await api.post(f"/campaigns/{created['id']}/preview", json={"limit": 1})).json()
    assert len(first["messages"]) + len(first["exclusions"]) == 1 and first["next_cursor"]
    assert not (await api.get("/messages", params={"campaign_id": created["id"]})).json()["items"]

    key = {"Idempotency-Key": unique("send")}
    sent = await api.post(f"/campaigns/{created['id']}/send", headers=key)
    assert sent.status_code == 202, sent.text
    again = await api.post(f"/campaigns/{created['id']}/send", headers=key)
    assert again.status_code == 202 and again.json() == sent.json()
    third = await api.post(f"/campaigns/{created['id']}/send")
    assert third.status_code == 202

    async def delivered() -> dict[str, Any] | None:
        found = (await api.get(f"/campaigns/{created['id']}")).json()
        counts = found["counts"]
        return found if counts["delivered"] == expected - 2 and found["status"] == "sent" else None

    done = await eventually(delivered, timeout=60)
    assert done["recipients"] == expected
    assert done["excluded"] == {"no_phone": 1, "consent_withdrawn": 1}
    assert done["counts"]["queued"] == done["counts"]["held"] == done["counts"]["failed"] == 0
    messages = (await api.get("/messages", params={"campaign_id": created["id"]})).json()["items"]
    assert sorted(m["customer_id"] for m in messages) == sorted([solar["id"], lunar["id"]])
    assert all(m["status"] == "delivered" and m["category"] == "birthday" for m in messages)


async def test_festival_miss_you_and_segment_campaigns_choose_their_customers(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api, timezone=daytime_zone())
    zone = ZoneInfo(store["timezone"])
    today = datetime.now(zone).date()
    owner = await create_staff(api, store_id=store["id"])
    holiday = await template(api, store["id"], "holiday", "{form_of_address}，节日快乐")
    miss = await template(api, store["id"], "miss_you", "{form_of_address}，好久不见，{staff_name}")
    care = await template(api, store["id"], "care", "{form_of_address}，天冷注意保暖")
    product = await create_product(api)
    days = 30
    # The cut-off is exact: a purchase 30 days ago is unseen for 30 days, 29 days ago is not.
    gone = await create_customer(
        api,
        store_id=store["id"],
        name="陈静",
        gender="female",
        phone=a_mobile(),
        owner_staff_id=owner["id"],
    )
    await record_purchase(
        api, customer_id=gone["id"], sku=product["sku"], purchased_at=days_ago(days)
    )
    recent = await create_customer(api, store_id=store["id"], phone=a_mobile())
    await record_purchase(
        api, customer_id=recent["id"], sku=product["sku"], purchased_at=days_ago(days - 1)
    )
    visited = await create_customer(api, store_id=store["id"], phone=a_mobile())
    await record_purchase(
        api, customer_id=visited["id"], sku=product["sku"], purchased_at=days_ago(days + 60)
    )
    never = await create_customer(api, store_id=store["id"], phone=a_mobile())

    async def visit_logged() -> bool | None:
        response = await api.post(
            "/visits",
            json={
                "customer_id": visited["id"],
                "staff_id": owner["id"],
                "method": "phone",
                "occurred_at": days_ago(days - 1),
                "outcome": "聊了聊",
            },
        )
        return True if response.status_code == 201 else None

    await eventually(visit_logged)

    # Festival: its date from the calendar; every customer of the store.
    festival = await campaign(
        api,
        {
            "kind": "festival",
            "template_id": holiday,
            "store_id": store["id"],
            "occasion": "mid_autumn",
        },
    )
    calendar = [
        o.on
        for o in shared_occasions(start=today, end=today + timedelta(days=400))
        if o.occasion.value == "mid_autumn"
    ]
    assert festival["occasion_on"] == calendar[0].isoformat()
    await preview_once(api, festival["id"], 4)
    wrong = await api.post(
        "/campaigns",
        json={
            "kind": "season",
            "template_id": holiday,
            "store_id": store["id"],
            "occasion": "mid_autumn",
        },
    )
    assert wrong.status_code == 422

    missed = await campaign(
        api,
        {"kind": "miss_you", "template_id": miss, "store_id": store["id"], "unseen_days": days},
    )

    async def purchases_seen() -> dict[str, Any] | None:
        found = (await api.post(f"/campaigns/{missed['id']}/preview", json={})).json()
        ids = [m["customer_id"] for m in found["messages"]]
        return found if ids == [gone["id"]] else None

    found = await eventually(purchases_seen)
    # In the owner's voice.
    assert found["messages"][0]["text"] == f"陈女士，好久不见，{owner['name']}"
    assert never["id"] not in [m["customer_id"] for m in found["messages"]]

    # Manual: scoring's segment (the value tier the purchase gave the first customer).
    score = await score_with_purchases(api, gone["id"])
    manual = await campaign(
        api,
        {
            "kind": "manual",
            "template_id": care,
            "store_id": store["id"],
            "segment": {"value_tier": score["value_tier"]},
        },
    )
    segment = (await api.post(f"/campaigns/{manual['id']}/preview", json={})).json()
    assert gone["id"] in [m["customer_id"] for m in segment["messages"]]
    assert never["id"] not in [m["customer_id"] for m in segment["messages"]]


async def test_roles_and_another_store(api: httpx.AsyncClient) -> None:
    store = await create_store(api, timezone=daytime_zone())
    other = await create_store(api, timezone=daytime_zone())
    today = datetime.now(UTC).date().isoformat()
    birthday = await template(api, store["id"], "birthday", "生日快乐")
    staff_member = await create_staff(api, store_id=store["id"])
    staff = await create_account(
        api, role="staff", store_id=store["id"], staff_id=staff_member["id"]
    )
    manager = await create_account(api, role="store_manager", store_id=store["id"])
    stranger = await create_account(api, role="store_manager", store_id=other["id"])
    body = {"kind": "birthday", "template_id": birthday, "date_from": today}
    async with (
        client_as(api, token=(await sign_in(api, staff))["access_token"]) as as_staff,
        client_as(api, token=(await sign_in(api, manager))["access_token"]) as as_manager,
        client_as(api, token=(await sign_in(api, stranger))["access_token"]) as as_stranger,
    ):
        assert (await as_staff.post("/campaigns", json=body)).status_code == 403
        made = await as_manager.post("/campaigns", json=body)
        assert made.status_code == 201, made.text
        assert made.json()["store_id"] == store["id"]
        campaign_id = made.json()["id"]
        assert (await as_staff.get(f"/campaigns/{campaign_id}")).status_code == 200
        assert (
            await as_staff.post(f"/campaigns/{campaign_id}/preview", json={})
        ).status_code == 200
        assert (await as_staff.post(f"/campaigns/{campaign_id}/send")).status_code == 403
        assert (await as_stranger.get(f"/campaigns/{campaign_id}")).status_code == 404
        assert (await as_stranger.post(f"/campaigns/{campaign_id}/send")).status_code == 404
        assert (
            await as_stranger.post(f"/campaigns/{campaign_id}/preview", json={})
        ).status_code == 404
        # Another store's template is not this store's to send.
        assert (
            await as_stranger.post("/campaigns", json={**body, "store_id": other["id"]})
        ).status_code == 404
        sent = await as_manager.post(f"/campaigns/{campaign_id}/send")
        assert sent.status_code == 202 and sent.json()["status"] == "sending"
