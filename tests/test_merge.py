"""Merging duplicate files through the gateway: the survivor's union of facts, purchases,
relations and referrals moved, the pointer left behind, the events on the broker, engagement's
tasks and scoring's score following the survivor, each refusal named, and two merges of the
same pair the other way round at once."""

import asyncio
from typing import Any

import httpx
from sqlalchemy import text

from crm_devstack.fixtures import eventually, session_on
from crm_devstack.stack import LocalStack
from tests.builders import (
    caller_as,
    client_as,
    create_account,
    create_customer,
    create_product,
    create_staff,
    create_store,
    days_ago,
    record_purchase,
    score_of,
    score_with_purchases,
    sign_in,
)
from tests.test_customer_profile_events import events_of

ADDRESS = {"province": "江苏省", "city": "南京市", "district": "玄武区", "street": "珠江路 88 号"}


async def _get(client: httpx.AsyncClient, url: str) -> Any:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_merge_unites_the_files_and_moves_what_the_duplicate_held(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    sid = store["id"]
    mine, theirs = await create_product(api), await create_product(api)
    owner, other_owner = (
        await create_staff(api, store_id=sid),
        await create_staff(api, store_id=sid),
    )
    referrer = await create_customer(api, store_id=sid, name="赵老师")
    survivor = await create_customer(
        api,
        store_id=sid,
        name="王芳",
        phone="13800000001",
        owner_staff_id=owner["id"],
        deep={"hobbies": ["钓鱼"]},
        health_consent=True,
        health={"allergies": ["青霉素"]},
    )
    duplicate = await create_customer(
        api,
        store_id=sid,
        name="汪芳",
        phones=[{"number": "13900000002", "primary": True}, {"number": "13800000001"}],
        owner_staff_id=other_owner["id"],
        birthday="1950-05-06",
        address=ADDRESS,
        email="wang.fang@example.com",
        deep={"hobbies": ["下棋", "钓鱼"], "housing": "自有住房"},
        referrer_id=referrer["id"],
        consents={"sms": {"granted": True, "channel": "in_store"}},
        health_consent=True,
        health={"allergies": ["花粉"], "chronic_conditions": ["高血压"]},
    )
    spouse = await create_customer(api, store_id=sid, name="李雷")
    referred = await create_customer(api, store_id=sid, name="周红", referrer_id=duplicate["id"])
    related = await api.post(
        f"/customers/{duplicate['id']}/relations",
        json={"related_customer_id": spouse["id"], "kind": "spouse"},
    )
    assert related.status_code == 201, related.text
    await record_purchase(
        api, customer_id=survivor["id"], sku=mine["sku"], unit_price="100.00", staff_id=owner["id"]
    )
    bought = await record_purchase(
        api,
        customer_id=duplicate["id"],
        sku=theirs["sku"],
        unit_price="300.00",
        staff_id=other_owner["id"],
    )
    await score_with_purchases(api, duplicate["id"])
    await score_with_purchases(api, survivor["id"])

    async def tasks_of(customer_id: str) -> list[dict[str, Any]]:
        return list((await _get(api, f"/tasks?customer_id={customer_id}"))["items"])

    their_tasks = await eventually(lambda: tasks_of(duplicate["id"]), timeout=60)
    version = (await api.get(f"/customers/{survivor['id']}")).headers["ETag"]

    async with await caller_as(api, "store_manager", store_id=sid) as manager:
        merged = await manager.post(
            f"/customers/{survivor['id']}/merge",
            json={"duplicate_id": duplicate["id"]},
            headers={"If-Match": version},
        )
        assert merged.status_code == 200, merged.text
        body = merged.json()
        kept = await _get(manager, f"/customers/{survivor['id']}")
        pointer = await _get(manager, f"/customers/{duplicate['id']}")
        their_purchases = await _get(manager, f"/customers/{duplicate['id']}/purchases")
        our_purchases = await _get(manager, f"/customers/{survivor['id']}/purchases")
        trail = await _get(manager, f"/customers/{survivor['id']}/merges")
        trail_of_pointer = await _get(manager, f"/customers/{duplicate['id']}/merges")
        family = await _get(manager, f"/customers/{spouse['id']}/relations")
        referral = await _get(manager, f"/customers/{referred['id']}")
        candidates = await _get(manager, "/customers/duplicates")

    # The union: the survivor's own values kept, what it lacked taken from the duplicate.
    assert kept["name"] == "王芳" and kept["owner_staff_id"] == owner["id"]
    assert [(p["number"], p["primary"]) for p in kept["phones"]] == [
        ("+8613800000001", True),
        ("+8613900000002", False),
    ]
    assert kept["birthday"] == "1950-05-06"
    assert kept["address"]["street"] == ADDRESS["street"]
    assert kept["email"] == "wang.fang@example.com"
    assert kept["deep"]["hobbies"] == ["钓鱼", "下棋"] and kept["deep"]["housing"] == "自有住房"
    assert kept["referrer_id"] == referrer["id"]
    assert kept["consents"]["sms"]["granted"] is True
    assert kept["health"]["allergies"] == ["青霉素", "花粉"]
    assert kept["health"]["chronic_conditions"] == ["高血压"]
    assert int(kept["version"]) == int(version.strip('"')) + 1 == body["version"]
    assert {"birthday", "phones", "email", "address", "referrer_id", "health"} <= set(
        body["changed"]
    )

    # The pointer: status and survivor, nothing personal; no purchases left on it.
    assert pointer == {
        "id": duplicate["id"],
        "store_id": sid,
        "status": "merged",
        "merged_into": survivor["id"],
        "version": pointer["version"],
    }
    assert their_purchases["items"] == []
    assert {p["id"] for p in our_purchases["items"]} >= {bought["id"]}
    assert {r["related_customer_id"]: r["kind"] for r in family["items"]} == {
        survivor["id"]: "spouse"
    }
    assert referral["referrer_id"] == survivor["id"]
    assert candidates["items"] == []  # the pointer is no candidate any more

    (record,) = trail["items"]
    assert trail_of_pointer["items"] == trail["items"]
    assert record["survivor_id"] == survivor["id"]
    assert record["duplicate_id"] == duplicate["id"]
    assert record["merged_by"]
    assert record["moved"]["counts"] == {
        "purchases": 1,
        "refunds": 0,
        "relations": 1,
        "referrals": 1,
    }
    assert record == body["merge"]

    # On the broker: customer.merged for the duplicate, customer.updated for the survivor.
    dup_events = await events_of(stack, duplicate["id"], 2)
    (merged_event,) = [e for e in dup_events if e.type == "customer.merged"]
    assert merged_event.payload["merged_into"] == survivor["id"]
    assert merged_event.payload["file"]["status"] == "merged"
    survivor_events = await events_of(stack, survivor["id"], 2)
    update = [e for e in survivor_events if e.type == "customer.updated"][-1]
    assert update.payload["changed"] == body["changed"]
    assert update.payload["file"]["relations"] == [{"customer_id": spouse["id"], "kind": "spouse"}]

    # Engagement moves the duplicate's tasks onto the survivor; scoring folds its spend in.
    moved_ids = {t["id"] for t in their_tasks}

    async def tasks_moved() -> bool:
        ours = {t["id"] for t in await tasks_of(survivor["id"])}
        return moved_ids <= ours and not await tasks_of(duplicate["id"])

    await eventually(tasks_moved, timeout=60)

    async def folded() -> dict[str, Any] | None:
        score = await score_of(api, survivor["id"])
        return score if score and score["stats"]["purchase_count"] == 2 else None

    score = await eventually(folded, timeout=60)
    assert score["stats"]["net_spend_365d"] == "400.00"
    await eventually(lambda: _score_gone(api, duplicate["id"]), timeout=60)


async def _score_gone(api: httpx.AsyncClient, customer_id: str) -> bool:
    return (await api.get(f"/customers/{customer_id}/score")).status_code == 404


async def test_each_refusal_names_its_rule(api: httpx.AsyncClient) -> None:
    store, other = await create_store(api), await create_store(api)
    sid = store["id"]
    a, b, c = [await create_customer(api, store_id=sid) for _ in "abc"]
    archived = await create_customer(api, store_id=sid)
    assert (await api.delete(f"/customers/{archived['id']}")).status_code == 204
    erased = await create_customer(api, store_id=sid)
    wiped = await api.post(f"/customers/{erased['id']}/erase", json={"reason": "customer_request"})
    assert wiped.status_code == 200, wiped.text
    elsewhere = await create_customer(api, store_id=other["id"])

    async def merge(survivor: str, duplicate: str, **headers: str) -> httpx.Response:
        return await api.post(
            f"/customers/{survivor}/merge", json={"duplicate_id": duplicate}, headers=headers
        )

    itself = await merge(a["id"], a["id"])
    assert itself.status_code == 422 and itself.json()["errors"][0]["field"] == "duplicate_id"
    assert "itself" in itself.json()["detail"]
    across = await merge(a["id"], elsewhere["id"])
    assert across.status_code == 422 and "another store" in across.json()["detail"]
    stale = await merge(a["id"], b["id"], **{"If-Match": '"999"'})
    assert stale.status_code == 412
    for gone in (archived, erased):
        refused = await merge(a["id"], gone["id"])
        assert refused.status_code == 409, refused.text
        assert gone["id"] in refused.json()["detail"]
        backwards = await merge(gone["id"], a["id"])
        assert backwards.status_code == 409, backwards.text
    unknown = await merge(a["id"], "no-such-file")
    assert unknown.status_code == 404
    unknown_field = await api.post(f"/customers/{a['id']}/merge", json={"duplicat_id": b["id"]})
    assert unknown_field.status_code == 422

    assert (await merge(a["id"], b["id"])).status_code == 200
    again = await merge(c["id"], b["id"])
    assert again.status_code == 409
    assert a["id"] in again.json()["detail"]  # names the survivor to follow
    into_pointer = await merge(b["id"], c["id"])
    assert into_pointer.status_code == 409 and a["id"] in into_pointer.json()["detail"]
    # A sale is recorded on the file that holds the customer's purchases, not on its pointer.
    product = await create_product(api)
    on_pointer = await api.post(
        f"/customers/{b['id']}/purchases",
        json={"purchased_at": days_ago(1), "items": [{"sku": product["sku"], "qty": 1}]},
    )
    assert on_pointer.status_code == 409, on_pointer.text
    assert a["id"] in on_pointer.json()["detail"]
    assert (await _get(api, f"/customers/{b['id']}/purchases"))["items"] == []
    # Nothing of the refused merges was written: c is active with no trail.
    assert (await _get(api, f"/customers/{c['id']}"))["status"] == "active"
    assert (await _get(api, f"/customers/{c['id']}/merges"))["items"] == []

    async with await caller_as(api, "store_manager", store_id=other["id"]) as foreign:
        hidden = await foreign.post(f"/customers/{a['id']}/merge", json={"duplicate_id": c["id"]})
        assert hidden.status_code == 404
    staff_account = await create_account(api, role="staff", store_id=sid)
    token = (await sign_in(api, staff_account))["access_token"]
    async with client_as(api, token=token) as staff:
        forbidden = await staff.post(f"/customers/{a['id']}/merge", json={"duplicate_id": c["id"]})
        assert forbidden.status_code == 403
        assert (await staff.get(f"/customers/{a['id']}/merges")).status_code == 403


async def test_two_merges_of_one_pair_the_other_way_round_at_once(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    for _ in range(3):
        a, b = [await create_customer(api, store_id=store["id"]) for _ in "ab"]
        first, second = await asyncio.gather(
            api.post(f"/customers/{a['id']}/merge", json={"duplicate_id": b["id"]}),
            api.post(f"/customers/{b['id']}/merge", json={"duplicate_id": a["id"]}),
        )
        statuses = sorted([first.status_code, second.status_code])
        assert statuses == [200, 409], (first.text, second.text)
        winner = first if first.status_code == 200 else second
        survivor, loser = winner.json()["survivor_id"], winner.json()["duplicate_id"]
        assert (await _get(api, f"/customers/{loser}"))["merged_into"] == survivor
        assert (await _get(api, f"/customers/{survivor}"))["status"] == "active"


async def test_a_merge_locks_its_files_in_id_order(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    """Whichever file survives, the lower id is locked first: a writer holding the lower file
    and then asking for the higher one (as every writer locking in id order does) never meets
    a merge that holds the higher file while waiting for the lower (a deadlock)."""
    store = await create_store(api)
    low, high = sorted([(await create_customer(api, store_id=store["id"]))["id"] for _ in "ab"])
    lock = text("SELECT id FROM customer WHERE id = :id FOR UPDATE")
    async with session_on(stack.database_url("customer")) as session:
        # The two files' first scores (prospects) change nothing they show: the scores' read
        # copy neither locks nor writes them (score_copy.py), so no writer but this test's and
        # the merge takes the rows.
        await session.execute(text("SET LOCAL lock_timeout = '3s'"))
        await session.execute(lock, {"id": low})
        merging = asyncio.create_task(
            api.post(f"/customers/{high}/merge", json={"duplicate_id": low})
        )
        await asyncio.sleep(0.5)  # the merge is waiting for the lower file, holding nothing
        await session.execute(lock, {"id": high})  # a deadlock (or a timeout) if it held it
        await session.commit()
    merged = await merging
    assert merged.status_code == 200, merged.text
