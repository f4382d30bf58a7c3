"""GET /customers through the gateway: each kind of search finds the right files, the filters
(owner, value tier from the scores' read copy, lifecycle, status), store scope, cursor pages and
the parameters refused."""

import base64
from typing import Any

import httpx
import orjson

from crm_devstack.fixtures import eventually
from tests.builders import (
    caller_as,
    client_as,
    create_account,
    create_customer,
    create_product,
    create_staff,
    create_store,
    record_purchase,
    sign_in,
)

PROBLEM = "application/problem+json"


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/customers", params=params)
    assert response.status_code == 200, (params, response.text)
    return [c["id"] for c in response.json()["items"]]


async def _named(api: httpx.AsyncClient, store_id: str, *names: str) -> dict[str, str]:
    return {n: (await create_customer(api, store_id=store_id, name=n))["id"] for n in names}


async def test_names_are_found_by_fragment_pinyin_and_initials(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    ids = await _named(
        api, store["id"], "曾国藩", "单长乐", "王芳", "王建国", "欧阳春梅", "John Smith"
    )
    expected = {
        # Han text: three characters or more anywhere, one or two at either end of the name.
        "曾国藩": ["曾国藩"],
        "阳春梅": ["欧阳春梅"],
        "王": ["王芳", "王建国"],
        "王芳": ["王芳"],
        "国藩": ["曾国藩"],
        "长乐": ["单长乐"],
        # Pinyin: initials, a prefix of the full reading; polyphonic surnames read as surnames.
        "zgf": ["曾国藩"],
        "zengg": ["曾国藩"],
        "ZengGuoFan": ["曾国藩"],
        "ceng": [],
        "scl": ["单长乐"],
        "shanchangle": ["单长乐"],
        "dan": [],
        "wjg": ["王建国"],
        "wang": ["王芳", "王建国"],
        "oyc": ["欧阳春梅"],
        "smith": ["John Smith"],
        "张s": [],
    }
    for q, names in expected.items():
        assert sorted(await _ids(api, store_id=store["id"], q=q)) == sorted(
            ids[n] for n in names
        ), q


async def test_phones_are_found_by_tail_or_whole_number_though_stored_encrypted(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    wanted = await create_customer(api, store_id=store["id"], name="曾国藩", phone="13812340001")
    await create_customer(api, store_id=store["id"], name="曾国荃", phone="13912340002")
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        for q in ("0001", "13812340001", "138 1234 0001", "+86 138-1234-0001"):
            assert await _ids(staff, store_id=store["id"], q=q) == [wanted["id"]], q
        assert await _ids(staff, store_id=store["id"], q="13812340002") == []
        listed = (await staff.get("/customers", params={"q": "0001"})).json()["items"]
        assert [c["phone"] for c in listed] == ["138****0001"]


async def test_filters_by_owner_status_and_lifecycle(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    owner = await create_staff(api, store_id=store["id"])
    owned = await create_customer(
        api, store_id=store["id"], name="王芳", owner_staff_id=owner["id"]
    )
    other = await create_customer(api, store_id=store["id"], name="王芳")
    archived = await create_customer(api, store_id=store["id"], name="王芳")
    assert (await api.delete(f"/customers/{archived['id']}")).status_code == 204

    in_store = {"store_id": store["id"], "q": "王芳"}
    assert sorted(await _ids(api, **in_store)) == sorted([owned["id"], other["id"]])
    assert await _ids(api, **in_store, owner_staff_id=owner["id"]) == [owned["id"]]
    assert await _ids(api, **in_store, status="archived") == [archived["id"]]
    assert await _ids(api, store_id=store["id"], status="archived") == [archived["id"]]
    assert await _ids(api, **in_store, status="merged") == []
    # No score yet: prospects, with no lifecycle.
    assert sorted(await _ids(api, **in_store, value_tier="prospect")) == sorted(
        [owned["id"], other["id"]]
    )
    assert await _ids(api, **in_store, lifecycle="new_this_year") == []


async def test_the_tier_filter_follows_the_score_after_a_purchase(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    product = await create_product(api, unit_price="300.00")
    buyer = await create_customer(api, store_id=store["id"], name="单长乐", phone="13812340003")
    prospect = await create_customer(api, store_id=store["id"], name="单长青")
    await record_purchase(api, customer_id=buyer["id"], sku=product["sku"])

    # The store's only buyer is its top customer: vip, once scoring's event reaches the copy.
    async def listed_as_vip() -> list[str]:
        return await _ids(api, store_id=store["id"], value_tier="vip", q="scl")

    assert await eventually(listed_as_vip, timeout=60) == [buyer["id"]]
    assert await _ids(api, store_id=store["id"], value_tier="prospect") == [prospect["id"]]
    assert await _ids(api, store_id=store["id"], value_tier="vip", q="0003") == [buyer["id"]]
    assert await _ids(api, store_id=store["id"], value_tier="small") == []


async def test_another_stores_staff_never_see_the_files(api: httpx.AsyncClient) -> None:
    store, elsewhere = await create_store(api), await create_store(api)
    customer = await create_customer(api, store_id=store["id"], name="曾国藩", phone="13812340004")
    async with await caller_as(api, "staff", store_id=elsewhere["id"]) as staff:
        for q in ("曾国藩", "zgf", "0004", "13812340004"):
            assert await _ids(staff, q=q) == [], q
            assert await _ids(staff, q=q, store_id=store["id"]) == [], q
        assert await _ids(staff, store_id=store["id"]) == []
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        assert await _ids(staff, q="zgf") == [customer["id"]]


async def test_cursor_pages_cover_every_match_once_in_order(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    ids = [
        (await create_customer(api, store_id=store["id"], name="钟离春"))["id"] for _ in range(5)
    ]
    seen: list[str] = []
    params: dict[str, Any] = {"store_id": store["id"], "q": "zlc", "limit": 2}
    for _ in range(5):
        body = (await api.get("/customers", params=params)).json()
        seen += [c["id"] for c in body["items"]]
        if not body["next_cursor"]:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == sorted(ids)


async def test_invalid_parameters_are_refused_naming_them(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    for params, field in (
        ({"value_tier": "gold"}, "value_tier"),
        ({"lifecycle": "sleeping"}, "lifecycle"),
        ({"status": "deleted"}, "status"),
        ({"q": "王%"}, "q"),
        ({"q": "a_b"}, "q"),
        ({"q": "12"}, "q"),
        ({"owner_staff_id": "x" * 65}, "owner_staff_id"),
    ):
        response = await api.get("/customers", params={"store_id": store["id"], **params})
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
        assert field in [e["field"] for e in response.json()["errors"]], response.json()


async def test_a_search_by_a_chinese_name_that_discloses_phones_is_audited(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"], name="曾国藩", phone="13812340005")
    request_id = f"search-{customer['id']}"
    account = await create_account(api, role="store_manager", store_id=store["id"])
    token = (await sign_in(api, account))["access_token"]
    claims = token.split(".")[1]
    actor = orjson.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"]
    async with client_as(api, token=token) as manager:
        response = await manager.get(
            "/customers", params={"q": "曾国藩"}, headers={"X-Request-ID": request_id}
        )
        assert response.status_code == 200, response.text
        assert [c["phone"] for c in response.json()["items"]] == ["+8613812340005"]

    async def recorded() -> list[dict[str, Any]]:
        entries = (await api.get("/audit", params={"actor": actor})).json()["items"]
        return [e for e in entries if e["request_id"] == request_id]

    (entry,) = await eventually(recorded)
    assert entry["action"] == "search" and "曾国藩" in entry["resource"], entry
