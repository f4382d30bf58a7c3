"""Family relations (家庭成员) through the gateway: both ways, the rules that refuse one, store
scope, the family's purchases together (家族式购买) and the audit trail."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from crm_libs.pagination import encode_cursor
from tests.builders import (
    caller_as,
    create_customer,
    create_product,
    create_store,
    record_purchase,
)


async def _relate(
    api: httpx.AsyncClient, customer_id: str, related_id: str, kind: str
) -> httpx.Response:
    return await api.post(
        f"/customers/{customer_id}/relations",
        json={"related_customer_id": related_id, "kind": kind},
    )


async def _family(api: httpx.AsyncClient, customer_id: str) -> dict[str, str]:
    response = await api.get(f"/customers/{customer_id}/relations")
    assert response.status_code == 200, response.text
    return {r["related_customer_id"]: r["kind"] for r in response.json()["items"]}


async def test_a_relation_reads_from_both_sides_with_the_inverse_kind(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    me = await create_customer(api, store_id=store["id"], name="王芳")
    kin = {
        kind: await create_customer(api, store_id=store["id"], name=name)
        for kind, name in (
            ("spouse", "李雷"),
            ("parent", "张兰"),
            ("child", "李明"),
            ("sibling", "王强"),
            ("other", "刘涛"),
        )
    }
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        for kind, other in kin.items():
            created = await _relate(staff, me["id"], other["id"], kind)
            assert created.status_code == 201, created.text
            relation = created.json()
            assert relation["related_customer_id"] == other["id"]
            assert relation["kind"] == kind
            assert relation["name"] == other["name"]
            assert relation["related_status"] == "active"
            assert relation["since"]
        assert await _family(staff, me["id"]) == {o["id"]: k for k, o in kin.items()}
        inverse = {
            "spouse": "spouse",
            "parent": "child",
            "child": "parent",
            "sibling": "sibling",
            "other": "other",
        }
        for kind, other in kin.items():
            assert await _family(staff, other["id"]) == {me["id"]: inverse[kind]}, kind


async def test_the_same_relation_again_is_the_one_recorded_and_another_kind_a_conflict(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    mother = await create_customer(api, store_id=store["id"], name="张兰")
    son = await create_customer(api, store_id=store["id"], name="李明")
    first = await _relate(api, son["id"], mother["id"], "parent")
    assert first.status_code == 201
    again = await _relate(api, son["id"], mother["id"], "parent")
    assert again.status_code == 200 and again.json() == first.json()
    # The same relation, told from the other side.
    mirrored = await _relate(api, mother["id"], son["id"], "child")
    assert mirrored.status_code == 200 and mirrored.json()["kind"] == "child"
    changed = await _relate(api, son["id"], mother["id"], "sibling")
    assert changed.status_code == 409, changed.text
    assert changed.headers["content-type"] == "application/problem+json"
    assert "parent" in changed.json()["detail"]
    assert await _family(api, son["id"]) == {mother["id"]: "parent"}
    # Changing it: remove, then record the new kind.
    removed = await api.delete(f"/customers/{son['id']}/relations/{mother['id']}")
    assert removed.status_code == 204
    assert await _family(api, son["id"]) == {} and await _family(api, mother["id"]) == {}
    assert (await api.delete(f"/customers/{son['id']}/relations/{mother['id']}")).status_code == 204
    assert (await _relate(api, son["id"], mother["id"], "other")).status_code == 201
    assert await _family(api, mother["id"]) == {son["id"]: "other"}


async def test_a_relation_that_breaks_a_rule_is_refused_by_name(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    wife, husband, other_man, his_wife, archived = [
        await create_customer(api, store_id=store["id"], name=name)
        for name in ("王芳", "李雷", "张伟", "韩梅", "赵敏")
    ]
    itself = await _relate(api, wife["id"], wife["id"], "sibling")
    assert itself.status_code == 422
    assert [e["field"] for e in itself.json()["errors"]] == ["related_customer_id"]

    unknown = await _relate(api, wife["id"], "no-such-customer", "sibling")
    assert unknown.status_code == 404 and "related_customer_id" in unknown.json()["detail"]
    assert (await _relate(api, "no-such-customer", wife["id"], "sibling")).status_code == 404

    typo = await api.post(
        f"/customers/{wife['id']}/relations",
        json={"related_customer_id": husband["id"], "kind": "spouse", "knd": "x"},
    )
    assert typo.status_code == 422 and "knd" in {e["field"] for e in typo.json()["errors"]}
    bad_kind = await _relate(api, wife["id"], husband["id"], "cousin")
    assert bad_kind.status_code == 422
    assert [e["field"] for e in bad_kind.json()["errors"]] == ["kind"]

    assert (await api.delete(f"/customers/{archived['id']}")).status_code == 204
    for path, related in ((wife, archived), (archived, wife)):
        refused = await _relate(api, path["id"], related["id"], "sibling")
        assert refused.status_code == 409, refused.text
        assert "archived" in refused.json()["detail"]

    assert (await _relate(api, wife["id"], husband["id"], "spouse")).status_code == 201
    assert (await _relate(api, other_man["id"], his_wife["id"], "spouse")).status_code == 201
    # A second spouse, asked of either side: the refusal names the spouse already recorded.
    second = await _relate(api, wife["id"], other_man["id"], "spouse")
    assert second.status_code == 409 and husband["id"] in second.json()["detail"]
    theirs = await _relate(api, his_wife["id"], wife["id"], "spouse")
    assert theirs.status_code == 409 and other_man["id"] in theirs.json()["detail"]
    assert await _family(api, wife["id"]) == {husband["id"]: "spouse"}
    assert await _family(api, other_man["id"]) == {his_wife["id"]: "spouse"}


async def test_two_spouses_asked_at_once_record_one(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    wife, first, second = [
        await create_customer(api, store_id=store["id"], name=name)
        for name in ("王芳", "李雷", "张伟")
    ]
    answers = await asyncio.gather(
        _relate(api, wife["id"], first["id"], "spouse"),
        _relate(api, wife["id"], second["id"], "spouse"),
    )
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    assert list((await _family(api, wife["id"])).values()) == ["spouse"]


async def test_an_archived_relative_stays_in_the_list_with_its_status(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    mother = await create_customer(api, store_id=store["id"], name="张兰")
    son = await create_customer(api, store_id=store["id"], name="李明")
    assert (await _relate(api, son["id"], mother["id"], "parent")).status_code == 201
    assert (await api.delete(f"/customers/{mother['id']}")).status_code == 204
    (relation,) = (await api.get(f"/customers/{son['id']}/relations")).json()["items"]
    assert relation["related_customer_id"] == mother["id"]
    assert relation["related_status"] == "archived"
    # A wrong link stays correctable on an archived file.
    assert (await api.delete(f"/customers/{mother['id']}/relations/{son['id']}")).status_code == 204
    assert await _family(api, son["id"]) == {}


async def test_relations_are_listed_page_by_page(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    me = await create_customer(api, store_id=store["id"])
    relatives = [await create_customer(api, store_id=store["id"]) for _ in range(3)]
    for other in relatives:
        assert (await _relate(api, me["id"], other["id"], "sibling")).status_code == 201
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(f"/customers/{me['id']}/relations", params=params)).json()
        seen += [r["related_customer_id"] for r in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 2 and sorted(seen) == sorted(r["id"] for r in relatives)
    assert len(set(seen)) == 3


async def test_another_stores_files_are_as_unknown_as_missing_ones(
    api: httpx.AsyncClient,
) -> None:
    mine, theirs = await create_store(api), await create_store(api)
    me = await create_customer(api, store_id=mine["id"])
    neighbour = await create_customer(api, store_id=mine["id"])
    stranger = await create_customer(api, store_id=theirs["id"])
    stranger_kin = await create_customer(api, store_id=theirs["id"])
    assert (await _relate(api, stranger["id"], stranger_kin["id"], "sibling")).status_code == 201
    async with await caller_as(api, "staff", store_id=mine["id"]) as staff:
        across = await _relate(staff, me["id"], stranger["id"], "sibling")
        assert across.status_code == 404
        unknown = await _relate(staff, me["id"], "no-such-customer", "sibling")
        assert across.json()["title"] == unknown.json()["title"] == "Not found"
        for response in (
            await _relate(staff, stranger["id"], me["id"], "sibling"),
            await _relate(staff, stranger["id"], stranger_kin["id"], "sibling"),
            await staff.get(f"/customers/{stranger['id']}/relations"),
            await staff.delete(f"/customers/{stranger['id']}/relations/{stranger_kin['id']}"),
            await staff.delete(f"/customers/{me['id']}/relations/{stranger['id']}"),
            await staff.get(f"/customers/{stranger['id']}/family/purchases"),
        ):
            assert response.status_code == 404, response.text
            assert stranger_kin["id"] not in response.text
        assert (await _relate(staff, me["id"], neighbour["id"], "sibling")).status_code == 201
    # Head office sees both stores, and still relates files of one store only.
    two_stores = await _relate(api, me["id"], stranger["id"], "sibling")
    assert two_stores.status_code == 422
    assert [e["field"] for e in two_stores.json()["errors"]] == ["related_customer_id"]
    assert await _family(api, stranger["id"]) == {stranger_kin["id"]: "sibling"}
    assert await _family(api, me["id"]) == {neighbour["id"]: "sibling"}


async def test_the_familys_purchases_are_viewed_together_newest_first(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    product = await create_product(api, unit_price="100.00")
    me, wife, son, stranger = [
        await create_customer(api, store_id=store["id"], name=name)
        for name in ("李雷", "韩梅", "李明", "张伟")
    ]
    assert (await _relate(api, me["id"], wife["id"], "spouse")).status_code == 201
    assert (await _relate(api, son["id"], me["id"], "parent")).status_code == 201
    assert (await _relate(api, son["id"], stranger["id"], "other")).status_code == 201

    start = datetime.now(UTC) - timedelta(days=10)
    bought = []
    for days, who, qty in ((1, me, 1), (2, wife, 2), (3, son, 1), (4, me, 3), (5, stranger, 1)):
        at = (start + timedelta(days=days)).isoformat()
        purchase = await record_purchase(
            api, customer_id=who["id"], sku=product["sku"], qty=qty, purchased_at=at
        )
        bought.append((purchase["id"], who["id"]))
    family_ids = [p for p, who in bought if who != stranger["id"]]

    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        items: list[dict[str, Any]] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            response = await staff.get(f"/customers/{me['id']}/family/purchases", params=params)
            assert response.status_code == 200, response.text
            items += response.json()["items"]
            pages += 1
            cursor = response.json()["next_cursor"]
            if not cursor:
                break
        bad_cursor = await staff.get(
            f"/customers/{me['id']}/family/purchases",
            params={"cursor": encode_cursor("not a time|x")},
        )
        assert bad_cursor.status_code == 400
    assert pages == 2
    # The son's relative (the stranger) is not the customer's family.
    assert [i["id"] for i in items] == list(reversed(family_ids))
    kinds = {me["id"]: "self", wife["id"]: "spouse", son["id"]: "child"}
    assert all(i["kind"] == kinds[i["customer_id"]] for i in items)
    times = [i["purchased_at"] for i in items]
    assert times == sorted(times, reverse=True)
    wifes = next(i for i in items if i["customer_id"] == wife["id"])
    assert wifes["total"] == "200.00"
    assert wifes["items"] == [
        {"sku": product["sku"], "qty": 2, "unit_price": "100.00", "amount": "200.00"}
    ]
    # Seen from the son: his father's and the stranger's; no relation to his mother is recorded.
    from_son = (await api.get(f"/customers/{son['id']}/family/purchases")).json()["items"]
    assert {i["customer_id"] for i in from_son} == {son["id"], me["id"], stranger["id"]}


async def test_relating_and_unrelating_are_audited_on_both_files(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    wife = await create_customer(api, store_id=store["id"])
    husband = await create_customer(api, store_id=store["id"])
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        assert (await _relate(staff, wife["id"], husband["id"], "spouse")).status_code == 201
        assert (await _relate(staff, wife["id"], husband["id"], "spouse")).status_code == 200
        removed = await staff.delete(f"/customers/{husband['id']}/relations/{wife['id']}")
        assert removed.status_code == 204
    for file in (wife, husband):
        entries = (await api.get("/audit", params={"customer_id": file["id"]})).json()["items"]
        trail = [
            (e["action"], e["role"], e["resource"], e["fields"])
            for e in entries
            if e["action"] in ("relate", "unrelate")
        ]
        resource = f"customer/{file['id']}/relations"
        # The repeated relate changed nothing and is not a write on the trail.
        assert sorted(trail) == [
            ("relate", "staff", resource, ["related_customer_id", "kind"]),
            ("unrelate", "staff", resource, ["related_customer_id", "kind"]),
        ]
