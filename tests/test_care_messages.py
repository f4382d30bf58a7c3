"""Care messages through the gateway with the real broker: templates refused with the words and
placeholders named, a message queued, sent by the engagement service's worker through the console
provider and delivered, read back with GET /messages and counted in the staff member's
statistics; and the rules at send time as a user meets them (409 with the reason)."""

import random
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm_devstack.fixtures import eventually
from tests.builders import create_customer, create_staff, create_store, unique


def daytime_zone() -> str:
    """A time zone where it is now early afternoon: the stack's worker must not be in the
    store's quiet hours whatever the hour this test runs at."""
    offset = (14 - datetime.now(UTC).hour + 12) % 24 - 12
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def a_mobile() -> str:
    return f"138{random.randrange(10**8):08d}"


CONSENTED = {"consents": {"sms": {"granted": True, "channel": "paper_form"}}}


async def post_template(
    api: httpx.AsyncClient, store_id: str, category: str, body: str
) -> httpx.Response:
    return await api.post(
        "/templates",
        json={"store_id": store_id, "category": category, "name": unique("t"), "body": body},
    )


async def template(api: httpx.AsyncClient, store_id: str, category: str, body: str) -> str:
    response = await post_template(api, store_id, category, body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def send(
    api: httpx.AsyncClient, body: dict[str, Any], *, key: str | None = None
) -> httpx.Response:
    """POST /messages once engagement has the customer's file (it arrives by event)."""

    async def sent() -> httpx.Response | None:
        headers = {"Idempotency-Key": key} if key else {}
        response = await api.post("/messages", json=body, headers=headers)
        return None if response.status_code == 404 else response

    return await eventually(sent)


async def test_templates_name_the_forbidden_words_and_unknown_placeholders(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    # A holiday's or a season's message may not advertise; a placeholder must be one we fill.
    for category, body, named in (
        ("holiday", "{form_of_address}，新春快乐！店内促销活动开始了", ("促销", "活动")),
        ("season", "秋季新品上市", ("新品", "上市")),
        ("care", "{nickname}，{form_of_address}您好", ("{nickname}",)),
    ):
        refused = await post_template(api, store["id"], category, body)
        assert refused.status_code == 422, refused.text
        assert all(word in refused.json()["detail"] for word in named), refused.text
    # What a season message may not say, an advert may (its own rules are the carrier's).
    advert = await post_template(api, store["id"], "promotional", "新品上市")
    assert advert.status_code == 201
    assert advert.json()["carrier_class"] == "promotional"
    listed = await api.get("/templates", params={"category": "promotional", "limit": 500})
    assert advert.json()["id"] in {t["id"] for t in listed.json()["items"]}


async def test_a_message_is_delivered_through_the_console_provider(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api, timezone=daytime_zone())
    staff = await create_staff(api, store_id=store["id"])
    customer = await create_customer(
        api, store_id=store["id"], phone="13912345678", gender="female", **CONSENTED
    )
    care = await template(
        api, store["id"], "care", "{form_of_address}，天凉了，记得添衣。{staff_name}"
    )
    body = {"customer_id": customer["id"], "template_id": care, "staff_id": staff["id"]}
    key = unique("k")
    first = await send(api, body, key=key)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "queued"
    again = await api.post("/messages", json=body, headers={"Idempotency-Key": key})
    assert again.json()["id"] == first.json()["id"]

    async def delivered() -> dict[str, Any] | None:
        page = await api.get("/messages", params={"customer_id": customer["id"]})
        items = page.json()["items"]
        return items[0] if items and items[0]["status"] == "delivered" else None

    message = await eventually(delivered)
    assert (
        len((await api.get("/messages", params={"customer_id": customer["id"]})).json()["items"])
        == 1
    )
    assert message["id"] == first.json()["id"]
    assert message["body"] == "王女士，天凉了，记得添衣。李娜"
    assert message["signature"] == store["name"]
    assert message["provider"] == "console"
    assert message["provider_message_id"] == f"console-{message['id']}"
    by_status = await api.get(
        "/messages", params={"customer_id": customer["id"], "status": "queued"}
    )
    assert by_status.json()["items"] == []
    today = datetime.now(ZoneInfo(store["timezone"])).date().isoformat()
    stats = await api.get(f"/staff/{staff['id']}/stats", params={"from": today, "to": today})
    assert stats.json()["messages"] == 1


async def test_the_rules_at_send_time(api: httpx.AsyncClient) -> None:
    store = await create_store(api, timezone=daytime_zone())
    owner = await create_staff(api, store_id=store["id"])
    other = (
        await api.post("/staff", json={"store_id": store["id"], "name": "赵强", "role": "staff"})
    ).json()
    care = await template(api, store["id"], "care", "{customer_name}您好，注意休息。")
    advert = await template(api, store["id"], "promotional", "{store}会员日")
    notice = await template(api, store["id"], "transactional", "您的订单已发货")
    miss_you = await template(api, store["id"], "miss_you", "好久不见，{staff_name}很想念您")

    # Promotional only to those who opted in, ending with the unsubscribe instruction.
    silent = await create_customer(api, store_id=store["id"], phone=a_mobile())
    refused = await send(api, {"customer_id": silent["id"], "template_id": advert})
    assert refused.status_code == 409
    assert "no_promotional_consent" in refused.json()["detail"]
    assert (await send(api, {"customer_id": silent["id"], "template_id": care})).status_code == 202
    member = await create_customer(
        api, store_id=store["id"], owner_staff_id=owner["id"], phone=a_mobile(), **CONSENTED
    )
    accepted = await send(api, {"customer_id": member["id"], "template_id": advert})
    assert accepted.status_code == 202, accepted.text
    listed = await api.get("/messages", params={"customer_id": member["id"]})
    assert listed.json()["items"][0]["body"] == f"{store['name']}会员日回TD退订"

    # miss_you speaks as the customer's own staff member, whoever else is named.
    voiced = await send(
        api, {"customer_id": member["id"], "template_id": miss_you, "staff_id": other["id"]}
    )
    assert voiced.status_code == 202, voiced.text
    listed = await api.get("/messages", params={"customer_id": member["id"]})
    mine = next(m for m in listed.json()["items"] if m["id"] == voiced.json()["id"])
    assert (mine["staff_id"], mine["body"]) == (owner["id"], "好久不见，李娜很想念您")

    # The frequency cap (3 in 7 days by default): the fourth is refused, a notice still goes.
    assert (await send(api, {"customer_id": member["id"], "template_id": care})).status_code == 202
    capped = await send(api, {"customer_id": member["id"], "template_id": care})
    assert capped.status_code == 409
    assert "frequency_cap" in capped.json()["detail"]
    assert (
        await send(api, {"customer_id": member["id"], "template_id": notice})
    ).status_code == 202

    # Consent withdrawn in the customer file: every message but a transactional one stops.
    leaving = await create_customer(api, store_id=store["id"], phone=a_mobile(), **CONSENTED)
    assert (await send(api, {"customer_id": leaving["id"], "template_id": care})).status_code == 202
    withdrawn = await api.patch(
        f"/customers/{leaving['id']}",
        json={"consents": {"sms": {"granted": False, "channel": "sms"}}},
    )
    assert withdrawn.status_code == 200, withdrawn.text

    async def stopped() -> httpx.Response | None:
        response = await api.post(
            "/messages", json={"customer_id": leaving["id"], "template_id": care}
        )
        return response if response.status_code == 409 else None

    refused = await eventually(stopped)
    assert "consent_withdrawn" in refused.json()["detail"]
    assert (
        await send(api, {"customer_id": leaving["id"], "template_id": notice})
    ).status_code == 202
