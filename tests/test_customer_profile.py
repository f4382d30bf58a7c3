"""The full customer file through the gateway: each field's rules, phones (encrypted, searched,
masked), lunar birthdays, owner, referrer and prospect rules."""

from typing import Any

import asyncpg
import httpx
import pytest

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
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


def _errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {e["field"]: e["message"] for e in response.json()["errors"]}


@pytest.fixture
async def store(api: httpx.AsyncClient) -> dict[str, Any]:
    return await create_store(api)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"gender": "x"}, "gender", "'female', 'male' or 'other'"),
        ({"approximate_age": 131}, "approximate_age", "less than or equal to 130"),
        ({"birthday": "2999-01-01"}, "birthday", "lies in the future"),
        ({"birthday": "1899-12-31"}, "birthday", "lies before 1900"),
        ({"birthday": "1950-02-30"}, "birthday", "YYYY-MM-DD"),
        ({"birthday_calendar": "julian"}, "birthday_calendar", "'solar' or 'lunar'"),
        (
            {"birthday": "2023-L03-01", "birthday_calendar": "lunar"},
            "birthday",
            "no leap 3rd month",
        ),
        (
            {"birthday": "1960-05-01", "wedding_anniversary": "1950-01-01"},
            "wedding_anniversary",
            "lies before the birthday",
        ),
        ({"wedding_anniversary": "2999-01-01"}, "wedding_anniversary", "lies in the future"),
        ({"email": "not-an-email"}, "email", "not an email address"),
        ({"phone": "12"}, "phone", "too short"),
        ({"phones": [{"number": "13812345678", "kind": "landline"}]}, "phones.0.kind", "mobile"),
        (
            {"phones": [{"number": "13812345678"}, {"number": "+86 138 1234 5678"}]},
            "phones.1.number",
            "listed twice",
        ),
        (
            {"phones": [{"number": "13812345678"}, {"number": "010-62345678"}]},
            "phones",
            "exactly one phone is primary",
        ),
        (
            {"phones": [{"number": "13812345678", "primary": True}], "phone": "13900001111"},
            "phone",
            "the primary of phones",
        ),
        ({"address": {"lat": 91}}, "address.lat", "less than or equal to 90"),
        ({"deep": {"service_preference": "pigeon"}}, "deep.service_preference", "'phone'"),
        ({"source": {"channel": "billboard"}}, "source.channel", "'public_place'"),
        ({"source": {"channel": "lecture", "cost": "-1"}}, "source.cost", "greater than"),
        ({"prospect": {"grade": "D"}}, "prospect.grade", "'A', 'B' or 'C'"),
        ({"prospect": {"stage": "bought"}}, "prospect.stage", "first purchase"),
        ({"consents": {"sms": {"granted": True}}}, "consents.sms.channel", "Field required"),
        ({"referrer_id": "nobody"}, "referrer_id", "not a customer of the file's store"),
        ({"owner_staff_id": "nobody"}, "owner_staff_id", "not an active staff member"),
        ({"id_number": "123"}, "id_number", ""),
    ],
)
async def test_each_invalid_field_is_named(
    api: httpx.AsyncClient, store: dict[str, Any], fields: dict[str, Any], field: str, message: str
) -> None:
    created = await api.post("/customers", json={"store_id": store["id"], "name": "李", **fields})
    errors = _errors(created)
    assert field in errors, errors
    assert message in errors[field], errors
    existing = await create_customer(api, store_id=store["id"])
    changed = await api.patch(f"/customers/{existing['id']}", json=fields)
    assert message in _errors(changed)[field]


async def test_unknown_fields_are_refused_naming_each(
    api: httpx.AsyncClient, store: dict[str, Any]
) -> None:
    body = {"store_id": store["id"], "name": "李", "nmae": "x", "address": {"stret": "y"}}
    errors = _errors(await api.post("/customers", json=body))
    assert set(errors) == {"nmae", "address.stret"}
    assert all("unknown field" in m for m in errors.values())
    customer = await create_customer(api, store_id=store["id"])
    patched = await api.patch(f"/customers/{customer['id']}", json={"status": "erased"})
    assert "unknown field" in _errors(patched)["status"]


async def test_several_invalid_fields_are_named_in_one_answer(
    api: httpx.AsyncClient, store: dict[str, Any]
) -> None:
    body = {
        "store_id": store["id"],
        "name": "李",
        "birthday": "2999-01-01",
        "phone": "12",
        "owner_staff_id": "nobody",
    }
    assert set(_errors(await api.post("/customers", json=body))) == {
        "birthday",
        "phone",
        "owner_staff_id",
    }


async def test_the_whole_profile_is_kept_and_shown(
    api: httpx.AsyncClient, store: dict[str, Any]
) -> None:
    owner = await create_staff(api, store_id=store["id"])
    referrer = await create_customer(api, store_id=store["id"])
    profile = {
        "gender": "female",
        "ethnicity": "汉族",
        "approximate_age": 66,
        "birthday": "1958-03-12",
        "wedding_anniversary": "1982-10-01",
        "email": "Wang.Fang@Example.COM",
        "address": {"province": "广东", "city": "深圳", "district": "南山", "street": "科技路1号"},
        "owner_staff_id": owner["id"],
        "deep": {"hobbies": ["钓鱼", "下棋"], "service_preference": "home_visit"},
        "source": {"channel": "lecture", "method": "血压测量", "cost": "12.5"},
        "referrer_id": referrer["id"],
        "prospect": {"stage": "contacted", "grade": "A"},
        "consents": {"sms": {"granted": True, "channel": "paper_form"}},
    }
    customer = await create_customer(api, store_id=store["id"], **profile)
    read = (await api.get(f"/customers/{customer['id']}")).json()
    assert read == customer
    assert read["email"] == "Wang.Fang@example.com"
    assert read["address"]["street"] == "科技路1号" and read["address"]["lat"] is None
    assert read["source"] == {
        "channel": "lecture",
        "method": "血压测量",
        "activity_id": None,
        "cost": "12.50",
    }
    assert read["prospect"] == {"stage": "contacted", "grade": "A"}
    assert read["consents"]["sms"]["granted"] is True
    assert read["consents"]["sms"]["channel"] == "paper_form"
    assert read["consents"]["sms"]["at"]  # the server's time
    assert read["status"] == "active" and read["merged_into"] is None
    assert read["birthday_calendar"] == "solar"
    # Deep facts gather over visits: a change adds to what is known.
    patched = await api.patch(f"/customers/{customer['id']}", json={"deep": {"housing": "独居"}})
    assert patched.json()["deep"]["hobbies"] == ["钓鱼", "下棋"]
    assert patched.json()["deep"]["housing"] == "独居"
    # A partner's till sees the district, not the street; staff go on home visits.
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        seen = (await staff.get(f"/customers/{customer['id']}")).json()
        assert seen["address"]["street"] == "科技路1号"
        assert seen["email"] == "W***@example.com"
    key = (await api.post("/api-keys", json={"store_id": store["id"], "name": "till"})).json()
    async with client_as(api, key=key["key"]) as till:
        seen = (await till.get(f"/customers/{customer['id']}")).json()
        assert seen["address"] == {
            "province": "广东",
            "city": "深圳",
            "district": "南山",
            "street": None,
            "lat": None,
            "lng": None,
        }


async def test_phones_are_encrypted_hashed_searched_and_masked(
    api: httpx.AsyncClient, stack: LocalStack, store: dict[str, Any]
) -> None:
    phones = [
        {"number": "010-62345678", "kind": "landline"},
        {"number": "13812345678", "primary": True},
    ]
    customer = await create_customer(api, store_id=store["id"], phones=phones)
    assert customer["phone"] == "+8613812345678"
    assert customer["phones"] == [
        {"number": "+8613812345678", "kind": "mobile", "primary": True},
        {"number": "+861062345678", "kind": "landline", "primary": False},
    ]
    # The shorthand replaces the primary and keeps the others.
    patched = await api.patch(f"/customers/{customer['id']}", json={"phone": "13900001111"})
    assert [p["number"] for p in patched.json()["phones"]] == ["+8613900001111", "+861062345678"]

    conn = await asyncpg.connect(stack.postgres.url("crm_customer", driver="postgresql"))
    try:
        columns = {
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'customer'"
            )
        }
        row = await conn.fetchrow("SELECT * FROM customer WHERE id = $1", customer["id"])
    finally:
        await conn.close()
    assert "phone" not in columns
    stored = " ".join(str(v) for v in dict(row).values())
    assert "13900001111" not in stored and "62345678" not in stored
    assert sorted(row["phone_tails"]) == ["1111", "5678"]
    assert len(row["phone_hashes"]) == 2

    async def found(client: httpx.AsyncClient, q: str) -> list[str]:
        response = await client.get("/customers", params={"q": q, "store_id": store["id"]})
        assert response.status_code == 200, (q, response.text)
        return [c["id"] for c in response.json()["items"]]

    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        for q in ("1111", "5678", "13900001111", "010 6234 5678"):
            assert await found(staff, q) == [customer["id"]], q
        assert await found(staff, "13812345678") == []  # no longer one of its numbers
        seen = (await staff.get(f"/customers/{customer['id']}")).json()
        assert seen["phone"] == "139****1111"
        assert [p["number"] for p in seen["phones"]] == ["139****1111", "106***5678"]
    async with await caller_as(api, "store_manager", store_id=store["id"]) as manager:
        assert await found(manager, "0001111") == [customer["id"]]
        assert await found(manager, "9991111") == []
        seen = (await manager.get(f"/customers/{customer['id']}")).json()
        assert seen["phones"] == patched.json()["phones"]


async def test_lunar_birthdays_are_written_and_read_in_the_lunar_calendar(
    api: httpx.AsyncClient, stack: LocalStack, store: dict[str, Any]
) -> None:
    customer = await create_customer(
        api, store_id=store["id"], birthday="2020-L04-10", birthday_calendar="lunar"
    )
    assert customer["birthday"] == "2020-L04-10"
    conn = await asyncpg.connect(stack.postgres.url("crm_customer", driver="postgresql"))
    try:
        solar = await conn.fetchval("SELECT birthday FROM customer WHERE id = $1", customer["id"])
    finally:
        await conn.close()
    assert solar.isoformat() == "2020-06-01"  # 闰四月初十 of 2020
    solar_read = await api.patch(
        f"/customers/{customer['id']}", json={"birthday_calendar": "solar"}
    )
    assert solar_read.json()["birthday"] == "2020-06-01"
    missing = await api.patch(
        f"/customers/{customer['id']}",
        json={"birthday": "1990-01-30", "birthday_calendar": "lunar"},
    )
    assert "has 29 days" in _errors(missing)["birthday"]


async def test_only_managers_change_the_owner_and_only_to_active_staff_of_the_store(
    api: httpx.AsyncClient, store: dict[str, Any]
) -> None:
    first, second = [await create_staff(api, store_id=store["id"]) for _ in "ab"]
    elsewhere = await create_staff(api, store_id=(await create_store(api))["id"])
    customer = await create_customer(api, store_id=store["id"], owner_staff_id=first["id"])
    assert customer["owner_staff_id"] == first["id"]
    path = f"/customers/{customer['id']}"
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        refused = await staff.patch(path, json={"owner_staff_id": second["id"]})
        assert refused.status_code == 403
        assert "store manager or head office" in refused.json()["detail"]
        # Registering with an owner is the registering staff member's to say.
        own = await staff.post(
            "/customers",
            json={"store_id": store["id"], "name": "赵", "owner_staff_id": second["id"]},
        )
        assert own.status_code == 201 and own.json()["owner_staff_id"] == second["id"]
    async with await caller_as(api, "store_manager", store_id=store["id"]) as manager:
        foreign = await manager.patch(path, json={"owner_staff_id": elsewhere["id"]})
        assert "not an active staff member" in _errors(foreign)["owner_staff_id"]
        await api.patch(f"/staff/{second['id']}", json={"status": "left"})
        gone = await manager.patch(path, json={"owner_staff_id": second["id"]})
        assert "not an active staff member" in _errors(gone)["owner_staff_id"]
        third = await create_staff(api, store_id=store["id"])
        moved = await manager.patch(path, json={"owner_staff_id": third["id"]})
        assert moved.status_code == 200 and moved.json()["owner_staff_id"] == third["id"]


async def test_a_file_registered_by_a_staff_member_is_theirs_until_a_manager_moves_it(
    api: httpx.AsyncClient, store: dict[str, Any]
) -> None:
    member, other = [await create_staff(api, store_id=store["id"]) for _ in "ab"]
    account = await create_account(api, role="staff", store_id=store["id"], staff_id=member["id"])
    body = {"store_id": store["id"], "name": "钱"}
    old_token = (await sign_in(api, account))["access_token"]
    async with client_as(api, token=old_token) as staff:
        mine = await staff.post("/customers", json=body)
        assert mine.status_code == 201 and mine.json()["owner_staff_id"] == member["id"]
        # The account now serves as another roster entry: tokens naming the old one are outdated.
        relinked = await api.patch(f"/accounts/{account['id']}", json={"staff_id": other["id"]})
        assert relinked.status_code == 200, relinked.text

        async def refused() -> bool:
            return (await staff.get("/stores")).status_code == 401

        assert await eventually(refused, timeout=15, interval=0.2)
    async with client_as(api, token=(await sign_in(api, account))["access_token"]) as staff:
        theirs = await staff.post("/customers", json=body)
        assert theirs.json()["owner_staff_id"] == other["id"]
    # Head office has no roster entry: its files wait for a manager to name the owner.
    assert (await create_customer(api, store_id=store["id"]))["owner_staff_id"] is None


async def test_referrers_are_of_the_store_never_itself_and_never_a_cycle(
    api: httpx.AsyncClient, store: dict[str, Any]
) -> None:
    a = await create_customer(api, store_id=store["id"])
    b = await create_customer(api, store_id=store["id"], referrer_id=a["id"])
    c = await create_customer(api, store_id=store["id"], referrer_id=b["id"])
    other = await create_customer(api, store_id=(await create_store(api))["id"])
    for referrer, message in [
        (a["id"], "refer themselves"),
        (c["id"], "a cycle"),
        (b["id"], "a cycle"),
        (other["id"], "not a customer of the file's store"),
    ]:
        refused = await api.patch(f"/customers/{a['id']}", json={"referrer_id": referrer})
        assert message in _errors(refused)["referrer_id"], referrer
    moved = await api.patch(f"/customers/{c['id']}", json={"referrer_id": a["id"]})
    assert moved.json()["referrer_id"] == a["id"]


async def test_prospect_stage_moves_forward_and_a_purchase_makes_it_bought(
    api: httpx.AsyncClient, store: dict[str, Any]
) -> None:
    customer = await create_customer(api, store_id=store["id"])
    assert customer["prospect"] == {"stage": "collected", "grade": None}
    path = f"/customers/{customer['id']}"
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        invited = await staff.patch(path, json={"prospect": {"stage": "invited", "grade": "B"}})
        assert invited.json()["prospect"] == {"stage": "invited", "grade": "B"}
        back = await staff.patch(path, json={"prospect": {"stage": "contacted"}})
        assert "moves forward only" in _errors(back)["prospect.stage"]
    async with await caller_as(api, "store_manager", store_id=store["id"]) as manager:
        corrected = await manager.patch(path, json={"prospect": {"stage": "contacted"}})
        assert corrected.json()["prospect"]["stage"] == "contacted"
    product = await create_product(api)
    before = (await api.get(path)).json()["version"]
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    after = (await api.get(path)).json()
    assert after["prospect"] == {"stage": "bought", "grade": "B"}
    assert after["version"] == before + 1
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    assert (await api.get(path)).json()["version"] == before + 1  # nothing more to change
