"""Duplicate candidates through the gateway: each rule of customers/duplicates.py finds its pair
with the keys that agree, a key many people share alone finds none, pages follow the pairs, and
only managers and head office list them, each for their own store."""

from typing import Any

import httpx

from tests.builders import (
    caller_as,
    create_customer,
    create_store,
)

ADDRESS = {"province": "江苏省", "city": "南京市", "district": "玄武区", "street": "珠江路 88 号"}


async def _all_pairs(client: httpx.AsyncClient, limit: int = 50) -> list[dict[str, Any]]:
    pairs: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/customers/duplicates", params=params)
        assert response.status_code == 200, response.text
        pairs += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pairs


async def test_each_rule_finds_its_pair_and_a_lone_shared_key_finds_none(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    sid = store["id"]

    async def file(name: str, **fields: Any) -> str:
        return str((await create_customer(api, store_id=sid, name=name, **fields))["id"])

    # Rules.
    phone = {await file("王芳", phone="13811112222"), await file("李娜", phone="138 1111 2222")}
    pinyin_birthday = {
        await file("汪芳", birthday="1955-03-04"),
        await file("王芳", birthday="1955-03-04"),
    }
    pinyin_address = {await file("张建国", address=ADDRESS), await file("章建国", address=ADDRESS)}
    similar_birthday = {
        await file("刘秀英", birthday="1948-01-02"),
        await file("刘秀", birthday="1948-01-02"),
    }
    # No rule: the same name alone, the same birthday alone, the same address alone.
    await file("赵敏")
    await file("赵敏")
    await file("孙丽", birthday="1960-07-08")
    await file("周强", birthday="1960-07-08")
    await file("吴刚", address=ADDRESS)

    async with await caller_as(api, "store_manager", store_id=sid) as manager:
        pairs = await _all_pairs(manager)
        paged = await _all_pairs(manager, limit=1)
    found = {frozenset((p["customer_id"], p["duplicate_id"])): p for p in pairs}
    assert set(found) == {
        frozenset(phone),
        frozenset(pinyin_birthday),
        frozenset(pinyin_address),
        frozenset(similar_birthday),
    }, pairs
    assert [(p["customer_id"], p["duplicate_id"]) for p in paged] == [
        (p["customer_id"], p["duplicate_id"]) for p in pairs
    ]
    expected = {
        frozenset(phone): (["same_phone"], ["phone"]),
        frozenset(pinyin_birthday): (["pinyin_name_and_birthday"], ["name_pinyin", "birthday"]),
        frozenset(pinyin_address): (["pinyin_name_and_address"], ["name_pinyin", "address"]),
        frozenset(similar_birthday): (
            ["similar_name_and_birthday"],
            ["name_similar", "birthday"],
        ),
    }
    for pair, (rules, keys) in expected.items():
        assert found[pair]["rules"] == rules, found[pair]
        assert found[pair]["keys"] == keys, found[pair]
        assert found[pair]["customer_id"] < found[pair]["duplicate_id"]
        assert 0 < found[pair]["confidence"] < 1
        assert found[pair]["suggested_survivor_id"] in pair
    # The strongest evidence first in confidence: a shared number over a merely similar name.
    assert found[frozenset(phone)]["confidence"] > found[frozenset(similar_birthday)]["confidence"]


async def test_several_rules_add_up_and_only_active_files_of_the_store_are_compared(
    api: httpx.AsyncClient,
) -> None:
    store, other = await create_store(api), await create_store(api)
    same = {"phone": "13922223333", "birthday": "1952-02-02", "address": ADDRESS}
    a = await create_customer(api, store_id=store["id"], name="王芳", **same)
    b = await create_customer(api, store_id=store["id"], name="王芳", **same)
    archived = await create_customer(api, store_id=store["id"], name="王芳", **same)
    assert (await api.delete(f"/customers/{archived['id']}")).status_code == 204
    await create_customer(api, store_id=other["id"], name="王芳", **same)

    response = await api.get("/customers/duplicates", params={"store_id": store["id"]})
    assert response.status_code == 200, response.text
    (pair,) = response.json()["items"]
    assert {pair["customer_id"], pair["duplicate_id"]} == {a["id"], b["id"]}
    assert pair["rules"] == [
        "pinyin_name_and_address",
        "pinyin_name_and_birthday",
        "same_phone",
        "similar_name_and_birthday",
    ]
    assert pair["keys"] == ["phone", "name_pinyin", "name_similar", "birthday", "address"]
    assert pair["confidence"] == 1.0 or pair["confidence"] > 0.99
    assert pair["suggested_survivor_id"] == a["id"]  # the older file


async def test_who_may_list_candidates(api: httpx.AsyncClient) -> None:
    store, other = await create_store(api), await create_store(api)
    no_store = await api.get("/customers/duplicates")
    assert no_store.status_code == 422
    assert no_store.json()["errors"][0]["field"] == "store_id"
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        assert (await staff.get("/customers/duplicates")).status_code == 403
    async with await caller_as(api, "store_manager", store_id=store["id"]) as manager:
        assert (await manager.get("/customers/duplicates")).status_code == 200
        elsewhere = await manager.get("/customers/duplicates", params={"store_id": other["id"]})
        assert elsewhere.status_code == 403
        bad = await manager.get("/customers/duplicates", params={"cursor": "nonsense"})
        assert bad.status_code == 400
