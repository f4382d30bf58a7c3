"""Contraindications (避免药物相克) through the gateway: a sale meeting the customer's health file
is refused with the warnings and writes nothing, an acknowledged one is recorded with who
acknowledged what, each role is told as much as it may see, and proposals are checked alike."""

from typing import Any

import httpx

from tests.builders import (
    caller_as,
    create_customer,
    create_store,
    days_ago,
    unique,
)

HEALTH = {
    "allergies": ["青霉素、头孢", "Penicillin (severe)"],
    "chronic_conditions": ["原发性高血压"],
    "medical_history": ["胃溃疡", "environmental dermatitis"],
    "current_medicines": ["阿司匹林肠溶片", "low-dose Aspirin"],
}


async def _product(
    api: httpx.AsyncClient, *, contraindications: list[str], allergens: list[str]
) -> dict[str, Any]:
    response = await api.post(
        "/products",
        json={
            "sku": unique("CI"),
            "name": "Herbal tonic",
            "category": "tonics",
            "unit_price": "80.00",
            "days_per_unit": 20,
            "contraindications": contraindications,
            "allergens": allergens,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def _sale(*skus: str, **extra: Any) -> dict[str, Any]:
    return {"purchased_at": days_ago(0), "items": [{"sku": s, "qty": 1} for s in skus], **extra}


async def _audit(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    return (await api.get("/audit", params={"customer_id": customer_id})).json()["items"]


async def _purchases(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    return (await api.get(f"/customers/{customer_id}/purchases")).json()["items"]


async def test_a_sale_meeting_the_health_file_is_refused_with_the_matches_and_writes_nothing(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"], health_consent=True, health=HEALTH)
    # Full-width and differently cased terms match (NFKC, casefold); 阿司匹林 matches the tablet.
    tonic = await _product(
        api, contraindications=["高血压", "阿司匹林"], allergens=["ＰＥＮＩＣＩＬＬＩＮ"]
    )
    penicillin = await _product(api, contraindications=[], allergens=["青霉素"])
    plain = await _product(api, contraindications=[], allergens=[])
    path = f"/customers/{customer['id']}/purchases"

    refused = await api.post(path, json=_sale(tonic["sku"], penicillin["sku"], plain["sku"]))
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["status"] == 409 and problem["title"] == "Conflict"
    assert sorted((w["sku"], w["kind"], w["matched"], w["term"]) for w in problem["warnings"]) == (
        sorted(
            [
                (tonic["sku"], "allergy", "Penicillin (severe)", "ＰＥＮＩＣＩＬＬＩＮ"),
                (tonic["sku"], "condition", "原发性高血压", "高血压"),
                (tonic["sku"], "medicine", "阿司匹林肠溶片", "阿司匹林"),
                (penicillin["sku"], "allergy", "青霉素", "青霉素"),
            ]
        )
    )
    assert await _purchases(api, customer["id"]) == []
    # The answer disclosed the health file: on record as a health read.
    entries = await _audit(api, customer["id"])
    assert any(e["action"] == "read" and e["fields"] == ["health"] for e in entries)

    # With a key, the refusal is not remembered: the acknowledged retry goes through.
    keyed = {"Idempotency-Key": unique("k")}
    again = await api.post(path, json=_sale(tonic["sku"]), headers=keyed)
    assert again.status_code == 409
    assert await _purchases(api, customer["id"]) == []
    sold = await api.post(path, json=_sale(tonic["sku"], acknowledge_warnings=True), headers=keyed)
    assert sold.status_code == 201, sold.text
    acknowledgement = sold.json()["acknowledgement"]
    assert acknowledgement["by"] and acknowledgement["at"]
    assert {w["kind"] for w in acknowledgement["warnings"]} == {"allergy", "condition", "medicine"}
    [listed] = await _purchases(api, customer["id"])
    assert listed["acknowledgement"] == acknowledgement
    [acknowledged] = [
        e for e in await _audit(api, customer["id"]) if e["action"] == "acknowledge_warnings"
    ]
    assert acknowledged["resource"] == f"purchase/{listed['id']}"
    assert acknowledged["fields"] == [
        f"{tonic['sku']}:{k}" for k in ("allergy", "condition", "medicine")
    ]

    # A product without terms sells without a warning, and nothing records an acknowledgement.
    unflagged = await api.post(path, json=_sale(plain["sku"]))
    assert unflagged.status_code == 201 and unflagged.json()["acknowledgement"] is None


async def test_staff_are_warned_without_being_told_what_matched(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"], health_consent=True, health=HEALTH)
    tonic = await _product(api, contraindications=["胃溃疡", "高血压"], allergens=["头孢"])
    path = f"/customers/{customer['id']}/purchases"
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        refused = await staff.post(path, json=_sale(tonic["sku"]))
        assert refused.status_code == 409, refused.text
        assert refused.json()["warnings"] == [
            {"sku": tonic["sku"], "kind": "contraindication", "matched": None, "term": None}
        ]
        assert "胃溃疡" not in refused.text and "头孢" not in refused.text
        sold = await staff.post(path, json=_sale(tonic["sku"], acknowledge_warnings=True))
        assert sold.status_code == 201, sold.text
        assert sold.json()["acknowledgement"]["warnings"][0]["kind"] == "contraindication"
        [seen] = (await staff.get(f"/customers/{customer['id']}/purchases")).json()["items"]
        assert "胃溃疡" not in str(seen)
    # The store manager reads what the staff member acknowledged, whole.
    async with await caller_as(api, "store_manager", store_id=store["id"]) as manager:
        [read] = (await manager.get(f"/customers/{customer['id']}/purchases")).json()["items"]
    assert sorted(w["matched"] for w in read["acknowledgement"]["warnings"]) == sorted(
        ["胃溃疡", "原发性高血压", "头孢"]
    )
    entries = await _audit(api, customer["id"])
    # Staff were not shown health data, so no health read of theirs is on record.
    assert not any(e["action"] == "read" and e["role"] == "staff" for e in entries)
    assert any(e["action"] == "acknowledge_warnings" and e["role"] == "staff" for e in entries)


async def test_no_health_data_or_no_consent_means_no_check(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    tonic = await _product(api, contraindications=["高血压"], allergens=["青霉素"])
    without_health = await create_customer(api, store_id=store["id"])
    withdrawn = await create_customer(api, store_id=store["id"], health_consent=True, health=HEALTH)
    # Withdrawing consent deletes the health data: nothing is left to check.
    changed = await api.patch(f"/customers/{withdrawn['id']}", json={"health_consent": False})
    assert changed.status_code == 200, changed.text
    for customer in (without_health, withdrawn):
        sold = await api.post(f"/customers/{customer['id']}/purchases", json=_sale(tonic["sku"]))
        assert sold.status_code == 201, sold.text
        assert sold.json()["acknowledgement"] is None


async def test_a_proposal_is_checked_like_a_sale(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"], health_consent=True, health=HEALTH)
    tonic = await _product(api, contraindications=["aspirin", "高血压"], allergens=[])
    # "iron" is not in "environment"; 鱼油 has nothing to meet in this health file.
    plain = await _product(api, contraindications=["iron"], allergens=["鱼油"])
    path = f"/customers/{customer['id']}/warnings"

    found = await api.get(path, params=[("sku", tonic["sku"]), ("sku", plain["sku"])])
    assert found.status_code == 200, found.text
    assert found.json() == {
        "warnings": [
            {"sku": tonic["sku"], "kind": "condition", "matched": "原发性高血压", "term": "高血压"},
            {
                "sku": tonic["sku"],
                "kind": "medicine",
                "matched": "low-dose Aspirin",
                "term": "aspirin",
            },
        ]
    }
    entries = await _audit(api, customer["id"])
    assert any(
        e["action"] == "read" and e["resource"] == f"customer/{customer['id']}/warnings"
        for e in entries
    )
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        masked = await staff.get(path, params={"sku": tonic["sku"]})
        assert masked.json()["warnings"] == [
            {"sku": tonic["sku"], "kind": "contraindication", "matched": None, "term": None}
        ]
        assert (await staff.get(path, params={"sku": plain["sku"]})).json() == {"warnings": []}

    unknown = await api.get(path, params={"sku": "NO-SUCH-SKU"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "sku"
    assert (await api.get(path)).status_code == 422
    other_store = await create_store(api)
    async with await caller_as(api, "store_manager", store_id=other_store["id"]) as stranger:
        assert (await stranger.get(path, params={"sku": tonic["sku"]})).status_code == 404
