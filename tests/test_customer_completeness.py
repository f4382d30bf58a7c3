"""What a file holds and what to ask next (DOMAIN.md §1 "Completeness"), through the gateway: the
score grows as the file fills, the missing fields come in etiquette's order, health is asked for
only after the customer's consent, and only the roles that see health learn which of its lists
are empty."""

from typing import Any

import httpx

from crm_devstack.stack import LocalStack
from customer_service.completeness.weights import FIELDS, HEALTH_CONSENT
from customer_service.customers.schemas import Deep, HealthRecord
from tests.builders import client_as, create_account, create_customer, create_store, sign_in

DEEP = {
    "occupation": "退休教师",
    "position": "教研组长",
    "family_situation": "老伴健在，儿子在外地",
    "housing": "三楼，无电梯",
    "personality": "开朗",
    "habits": "每月买两盒鱼油",
    "favourite_colours": ["红色"],
    "hobbies": ["钓鱼", "下棋"],
    "lifestyle": "早睡早起",
    "service_preference": "home_visit",
    "promotion_attitude": "不喜欢推销",
    "education": "大专",
    "income_band": "3000-5000",
    "contact_time": "上午",
}
HEALTH = {
    "chronic_conditions": ["高血压"],
    "medical_history": ["胆结石"],
    "allergies": ["青霉素"],
    "current_medicines": ["硝苯地平"],
    "other_health_products": ["某品牌钙片"],
}


async def completeness(api: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    response = await api.get(f"/customers/{customer_id}/completeness")
    assert response.status_code == 200, response.text
    return dict(response.json())


def fields_of(answer: dict[str, Any]) -> list[str]:
    return [m["field"] for m in answer["missing"]]


async def patch(api: httpx.AsyncClient, customer_id: str, **fields: Any) -> None:
    response = await api.patch(f"/customers/{customer_id}", json=fields)
    assert response.status_code == 200, response.text


def test_the_table_weighs_every_deep_and_health_field_once() -> None:
    named = [f.field for f in FIELDS]
    assert len(named) == len(set(named))
    assert {f"deep.{k}" for k in Deep.model_fields} <= set(named)
    assert {f"health.{k}" for k in HealthRecord.model_fields} <= set(named)
    assert all(f.weight > 0 and f.reason for f in FIELDS)
    # Name and phone count most, then birthday and address, then each deep or health field.
    weight = {f.field: f.weight for f in FIELDS}
    deep_and_health = [w for n, w in weight.items() if n.startswith(("deep.", "health."))]
    assert min(weight["name"], weight["phone"]) > max(weight["birthday"], weight["address"])
    assert min(weight["birthday"], weight["address"]) > max(deep_and_health)


async def test_the_score_grows_and_missing_fields_follow_etiquette(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"])
    fresh = await completeness(api, customer["id"])
    missing = fresh["missing"]
    # Registration's phone first, then what an acquaintance may ask, then the later visits'.
    assert missing[0] == {"field": "phone", "stage": "registration", "priority": 2}
    assert fields_of(fresh)[1:3] == ["birthday", "address"]
    stages = [m["stage"] for m in missing]
    assert stages == sorted(stages, key=["registration", "acquainted", "trusted"].index)
    for stage in ("acquainted", "trusted"):
        places = [m["priority"] for m in missing if m["stage"] == stage]
        assert places == sorted(places)
    # No consent: the consent is the first thing to ask in trust, no health question is listed.
    trusted = [m for m in missing if m["stage"] == "trusted"]
    assert trusted[0]["field"] == HEALTH_CONSENT
    assert not [f for f in fields_of(fresh) if f.startswith("health.") or f == "health"]

    scores = [fresh["score"]]
    for fields in (
        {"phone": "13812340001"},
        {"birthday": "1952-03-04", "address": {"city": "杭州", "street": "文一路8号"}},
        {"gender": "female", "ethnicity": "汉族", "email": "w.fang@example.com"},
        {"wedding_anniversary": "1975-05-01", "deep": DEEP},
    ):
        await patch(api, customer["id"], **fields)
        scores.append((await completeness(api, customer["id"]))["score"])
    assert scores == sorted(set(scores)), scores
    assert 0 < scores[0] < scores[-1] < 100

    # A city alone does not say where to visit: the address is still to be completed.
    other = await create_customer(api, store_id=store["id"], address={"city": "杭州"})
    assert "address" in fields_of(await completeness(api, other["id"]))

    # Everything but health, without consent: the consent is all there is left to ask.
    before_consent = await completeness(api, customer["id"])
    assert before_consent["missing"] == [
        {"field": HEALTH_CONSENT, "stage": "trusted", "priority": 1}
    ]
    await patch(api, customer["id"], health_consent=True)
    consented = await completeness(api, customer["id"])
    # Now the health lists count and are asked for, allergies and medicines first.
    assert fields_of(consented) == [
        "health.allergies",
        "health.current_medicines",
        "health.chronic_conditions",
        "health.medical_history",
        "health.other_health_products",
    ]
    await patch(api, customer["id"], health={"allergies": ["青霉素"]})
    partial = await completeness(api, customer["id"])
    assert "health.allergies" not in fields_of(partial)
    assert partial["score"] > consented["score"]
    await patch(api, customer["id"], health=HEALTH)
    assert await completeness(api, customer["id"]) == {"score": 100, "missing": []}


async def test_roles_that_do_not_see_health_learn_only_that_it_is_missing(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    customer = await create_customer(
        api, store_id=store["id"], health_consent=True, health={"allergies": ["青霉素"]}
    )
    callers = {}
    for role in ("store_manager", "staff", "expert"):
        account = await create_account(api, role=role, store_id=store["id"])
        callers[role] = client_as(api, token=(await sign_in(api, account))["access_token"])
    key = (await api.post("/api-keys", json={"store_id": store["id"], "name": "till"})).json()
    callers["partner"] = client_as(api, key=key["key"])
    try:
        answers = {role: await completeness(c, customer["id"]) for role, c in callers.items()}
    finally:
        for caller in callers.values():
            await caller.aclose()
    detailed = fields_of(answers["expert"])
    assert "health.current_medicines" in detailed and "health.allergies" not in detailed
    assert fields_of(answers["store_manager"]) == detailed
    for role in ("staff", "partner"):
        assert not [f for f in fields_of(answers[role]) if f.startswith("health.")], role
        assert fields_of(answers[role]).count("health") == 1, role
        # The same file, the same score, whoever asks.
        assert answers[role]["score"] == answers["expert"]["score"]


async def test_another_stores_file_is_unknown(api: httpx.AsyncClient, stack: LocalStack) -> None:
    mine, theirs = await create_store(api), await create_store(api)
    customer = await create_customer(api, store_id=theirs["id"])
    account = await create_account(api, role="staff", store_id=mine["id"])
    async with client_as(api, token=(await sign_in(api, account))["access_token"]) as staff:
        response = await staff.get(f"/customers/{customer['id']}/completeness")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
