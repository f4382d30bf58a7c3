"""A store's campaigns listed through the gateway: only the caller's store's, newest first, each
as its own read shows it (its counts by status included), paged with a small limit once each,
and filtered by status and kind; an unknown status or kind is a 422 naming it."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm_devstack.fixtures import eventually
from tests.builders import client_as, create_account, create_customer, create_store, sign_in
from tests.test_campaigns import campaign
from tests.test_care_messages import CONSENTED, a_mobile, daytime_zone, template


async def _walk(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every page of ``GET /campaigns``, in order."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await client.get(
            "/campaigns", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_a_store_lists_its_own_campaigns_newest_first_in_pages_and_by_filter(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api, timezone=daytime_zone())
    other = await create_store(api, timezone=daytime_zone())
    today = datetime.now(ZoneInfo(store["timezone"])).date().isoformat()
    birthday = await template(api, store["id"], "birthday", "{form_of_address}，生日快乐！")
    miss_you = await template(api, store["id"], "miss_you", "好久不见")
    elsewhere = await template(api, other["id"], "birthday", "生日快乐")
    # Someone the first campaign greets, so its counts are more than zeros.
    await create_customer(
        api,
        store_id=store["id"],
        name="张丽",
        gender="female",
        phone=a_mobile(),
        birthday=datetime.now(ZoneInfo(store["timezone"])).date().replace(year=1980).isoformat(),
        **CONSENTED,
    )
    greeting = {"kind": "birthday", "template_id": birthday, "store_id": store["id"]}
    made = [
        await campaign(api, {**greeting, "date_from": today}),
        await campaign(
            api,
            {
                "kind": "miss_you",
                "template_id": miss_you,
                "store_id": store["id"],
                "unseen_days": 90,
            },
        ),
        await campaign(api, {**greeting, "date_from": today, "name": "third"}),
        await campaign(api, {**greeting, "date_from": today, "name": "fourth"}),
        await campaign(api, {**greeting, "date_from": today, "name": "fifth"}),
    ]
    theirs = await campaign(
        api,
        {"kind": "birthday", "template_id": elsewhere, "store_id": other["id"], "date_from": today},
    )

    async def previewed() -> bool:
        # The customer's file reaches engagement by event: send once the campaign would find it.
        found = await api.post(f"/campaigns/{made[0]['id']}/preview", json={})
        return found.status_code == 200 and found.json()["would_queue"] == 1

    await eventually(previewed)
    sent = await api.post(f"/campaigns/{made[0]['id']}/send")
    assert sent.status_code == 202, sent.text

    staff = await create_account(api, role="staff", store_id=store["id"])
    async with client_as(api, token=(await sign_in(api, staff))["access_token"]) as as_staff:

        async def counted() -> list[dict[str, Any]] | None:
            items = await _walk(as_staff)
            first = next(c for c in items if c["id"] == made[0]["id"])
            # Delivered by the console provider: its counts move no more.
            return items if first["status"] == "sent" and first["counts"]["delivered"] else None

        listed = await eventually(counted, timeout=60)
        # Only the caller's store's, newest first, each as its own read shows it.
        assert [c["id"] for c in listed] == [c["id"] for c in reversed(made)]
        assert theirs["id"] not in {c["id"] for c in listed}
        for item in listed:
            assert item == (await as_staff.get(f"/campaigns/{item['id']}")).json()

        # A small limit walks them all, each once, in the same order.
        paged = await _walk(as_staff, limit=2)
        assert [c["id"] for c in paged] == [c["id"] for c in listed]
        first_page = (await as_staff.get("/campaigns", params={"limit": 2})).json()
        assert len(first_page["items"]) == 2 and first_page["next_cursor"]

        # Filters, alone and together.
        drafts = await _walk(as_staff, status="draft")
        assert [c["id"] for c in drafts] == [c["id"] for c in reversed(made[1:])]
        assert [c["id"] for c in await _walk(as_staff, status="sent")] == [made[0]["id"]]
        assert [c["id"] for c in await _walk(as_staff, kind="miss_you")] == [made[1]["id"]]
        both = await _walk(as_staff, kind="birthday", status="draft", limit=1)
        assert [c["id"] for c in both] == [made[4]["id"], made[3]["id"], made[2]["id"]]
        for name in ("status", "kind"):
            refused = await as_staff.get("/campaigns", params={name: "bogus"})
            assert refused.status_code == 422, refused.text
            assert [e["field"] for e in refused.json()["errors"]] == [name]

        # Another store is not this caller's to list, by name or otherwise.
        aimed = await as_staff.get("/campaigns", params={"store_id": other["id"]})
        assert aimed.status_code == 404, aimed.text
        own = await _walk(as_staff, store_id=store["id"])
        assert [c["id"] for c in own] == [c["id"] for c in listed]

    # Head office reads any store's by naming it.
    chosen = await _walk(api, store_id=other["id"])
    assert [c["id"] for c in chosen] == [theirs["id"]]
