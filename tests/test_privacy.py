"""The customer's privacy rights through the gateway (DOMAIN.md §11, PIPL): the export of
everything the customer service holds (JSON and a workbook) and erasure, which anonymises the
file, keeps the anonymous sales figures and tells engagement, whose tasks close."""

import io
import random
from typing import Any

import asyncpg
import httpx
from python_calamine import CalamineWorkbook

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import EventEnvelope, Topics
from tests.broker import Records, records_of
from tests.builders import (
    caller_as,
    create_customer,
    create_staff,
    create_store,
    days_ago,
    unique,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEALTH = {"allergies": ["青霉素"], "chronic_conditions": ["高血压"], "current_medicines": []}
SHEETS = [
    "档案",
    "家庭关系",
    "购买记录",
    "退货记录",
    "同意记录",
    "合并记录",
    "导入记录",
    "变更记录",
    "其他服务",
]


def _mobile() -> str:
    return "139" + "".join(random.choices("0123456789", k=8))


def _name() -> str:
    # A surname and given name no other test writes, so that a search finds this file alone.
    return "司马" + "".join(random.choices("春夏秋冬梅兰竹菊松柏", k=3))


async def _allergenic_product(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.post(
        "/products",
        json={
            "sku": unique("PV"),
            "name": "Herbal tonic",
            "category": "tonics",
            "unit_price": "80.00",
            "days_per_unit": 20,
            "contraindications": ["高血压"],
            "allergens": [],
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _a_full_file(api: httpx.AsyncClient, store_id: str) -> dict[str, Any]:
    """A customer with every kind of data: sensitive fields, family, a sale acknowledged
    against the health file (with an Idempotency-Key, so its answer is kept) and a refund."""
    phone = _mobile()
    owner = await create_staff(api, store_id=store_id)
    customer = await create_customer(
        api,
        store_id=store_id,
        name=_name(),
        phone=phone,
        email="sima.chun@example.com",
        address={
            "province": "浙江省",
            "city": "杭州市",
            "district": "西湖区",
            "street": "文三路1号",
        },
        id_number="11010519491231002X",
        health_consent=True,
        health=HEALTH,
        birthday="1956-03-08",
        wedding_anniversary="1980-10-01",
        ethnicity="汉族",
        gender="female",
        owner_staff_id=owner["id"],
        deep={"occupation": "退休教师", "hobbies": ["太极"]},
        source={"channel": "referral", "method": "邻居王阿姨介绍", "cost": "15.00"},
        consents={"sms": {"granted": True, "channel": "paper_form"}},
    )
    spouse = await create_customer(api, store_id=store_id, name="欧阳伟")
    child = await create_customer(api, store_id=store_id, name="欧阳明")
    for relative, kind in ((spouse, "spouse"), (child, "child")):
        related = await api.post(
            f"/customers/{customer['id']}/relations",
            json={"related_customer_id": relative["id"], "kind": kind},
        )
        assert related.status_code == 201, related.text
    product = await _allergenic_product(api)
    sale = await api.post(
        f"/customers/{customer['id']}/purchases",
        json={
            "purchased_at": days_ago(2),
            "staff_id": owner["id"],
            "items": [{"sku": product["sku"], "qty": 3}],
            "acknowledge_warnings": True,
        },
        headers={"Idempotency-Key": unique("sale")},
    )
    assert sale.status_code == 201, sale.text
    refund = await api.post(
        f"/purchases/{sale.json()['id']}/refund",
        json={
            "reason": "family_objection",
            "note": "女儿说妈妈血压高不能吃",
            "items": [{"sku": product["sku"], "qty": 1}],
        },
    )
    assert refund.status_code == 201, refund.text
    return {
        "customer": customer,
        "phone": phone,
        "spouse": spouse,
        "child": child,
        "sale": sale.json(),
        "refund": refund.json(),
        "product": product,
    }


async def _audit(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    response = await api.get("/audit", params={"customer_id": customer_id})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_the_export_holds_every_section_decrypted_for_managers_and_head_office(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    made = await _a_full_file(api, store["id"])
    customer = made["customer"]
    path = f"/customers/{customer['id']}/export"

    async with await caller_as(api, "store_manager", store_id=store["id"]) as manager:
        response = await manager.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    exported = response.json()
    assert set(exported) >= {
        "file",
        "relations",
        "purchases",
        "consents",
        "merges",
        "imports",
        "elsewhere",
    }
    file = exported["file"]
    # Decrypted and whole, even what head office sees masked and staff never see.
    assert file["name"] == customer["name"]
    assert file["phone"] == "+86" + made["phone"]
    assert file["id_number"] == "11010519491231002X"
    assert file["email"] == "sima.chun@example.com"
    assert file["address"]["street"] == "文三路1号"
    assert file["health"]["allergies"] == ["青霉素"]
    assert file["deep"]["occupation"] == "退休教师"
    assert {(r["related_customer_id"], r["kind"]) for r in exported["relations"]} == {
        (made["spouse"]["id"], "spouse"),
        (made["child"]["id"], "child"),
    }
    [purchase] = exported["purchases"]
    assert purchase["id"] == made["sale"]["id"] and purchase["total"] == "240.00"
    assert purchase["items"] == [
        {"sku": made["product"]["sku"], "qty": 3, "unit_price": "80.00", "amount": "240.00"}
    ]
    assert purchase["acknowledgement"]["warnings"][0]["matched"] == "高血压"
    [refund] = purchase["refunds"]
    assert refund["note"] == "女儿说妈妈血压高不能吃" and refund["total"] == "80.00"
    assert refund["items"][0]["qty"] == 1
    sms = exported["consents"]["sms"]
    assert sms["granted"] is True and sms["channel"] == "paper_form" and sms["at"]
    assert exported["consents"]["health"]["granted"] is True
    assert exported["consents"]["health"]["at"]
    assert exported["merges"] == {"merged_into": None, "merged_from": []}
    assert exported["imports"]["jobs"] == [] and exported["changes"] == []
    assert {e["service"] for e in exported["elsewhere"]} == {"engagement", "scoring"}
    assert "later step" in exported["note"]

    # The workbook: one sheet per section, read back as a spreadsheet program would.
    workbook_response = await api.get(path, headers={"Accept": XLSX})
    assert workbook_response.status_code == 200, workbook_response.text
    assert workbook_response.headers["content-type"] == XLSX
    book = CalamineWorkbook.from_filelike(io.BytesIO(workbook_response.content))
    assert book.sheet_names == SHEETS
    sheet = {name: book.get_sheet_by_name(name).to_python() for name in SHEETS}
    by_field = {row[2]: row[1] for row in sheet["档案"][1:]}
    assert sheet["档案"][0][0].startswith("字段")
    assert by_field["name"] == customer["name"] and by_field["id_number"] == "11010519491231002X"
    assert by_field["health.allergies"] == "青霉素"
    purchases = sheet["购买记录"]
    assert purchases[0][4] == "商品编码 (sku)"
    assert purchases[1][4] == made["product"]["sku"] and purchases[1][7] == 240
    assert sheet["退货记录"][1][4] == "女儿说妈妈血压高不能吃"
    assert len(sheet["家庭关系"]) == 3
    # Anything but JSON or the workbook is not offered.
    assert (await api.get(path, headers={"Accept": "text/csv"})).status_code == 406

    exports = [e for e in await _audit(api, customer["id"]) if e["action"] == "export"]
    assert len(exports) == 2
    for entry in exports:
        assert set(entry["fields"]) >= {"phone", "id_number", "health", "email", "address"}
        assert entry["resource"] == f"customer/{customer['id']}/export"


async def test_staff_experts_and_partners_may_not_export_or_erase_and_other_stores_not_find(
    api: httpx.AsyncClient,
) -> None:
    store, other = await create_store(api), await create_store(api)
    customer = await create_customer(api, store_id=store["id"], phone=_mobile())
    export, erase = f"/customers/{customer['id']}/export", f"/customers/{customer['id']}/erase"
    for role in ("staff", "expert", "partner"):
        async with await caller_as(api, role, store_id=store["id"]) as caller:
            assert (await caller.get(export)).status_code == 403, role
            refused = await caller.post(erase, json={"reason": "customer_request"})
            assert refused.status_code == 403, role
    async with await caller_as(api, "store_manager", store_id=other["id"]) as elsewhere:
        assert (await elsewhere.get(export)).status_code == 404
        assert (await elsewhere.post(erase, json={"reason": "customer_request"})).status_code == 404
    assert (await api.get(f"/customers/{customer['id']}")).json()["status"] == "active"
    # A reason is one of PIPL's grounds, and nothing else goes in the body.
    for body in ({}, {"reason": "bored"}, {"reason": "other", "note": "x"}):
        assert (await api.post(erase, json=body)).status_code == 422, body


async def _events(stack: LocalStack, wanted: dict[str, int]) -> dict[str, list[EventEnvelope]]:
    """crm.customers.v1's events keyed by each customer of ``wanted``, once each has its count."""

    def by_customer(records: Records) -> dict[str, list[EventEnvelope]]:
        found: dict[str, list[EventEnvelope]] = {key: [] for key in wanted}
        for record in records:
            key = (record.key or b"").decode()
            if key in found:
                found[key].append(EventEnvelope.model_validate_json(record.value))
        return found

    def enough(records: Records) -> bool:
        return all(len(events) >= wanted[k] for k, events in by_customer(records).items())

    return by_customer(await records_of(stack, Topics.CUSTOMERS, until=enough))


# A task not done yet: "overdue" is an open task shown past its day.
OPEN = {"open", "overdue"}


async def _tasks(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    response = await api.get("/tasks", params={"customer_id": customer_id})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_erasure_anonymises_the_file_keeps_the_sales_and_tells_the_other_services(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    made = await _a_full_file(api, store["id"])
    customer, spouse, child = made["customer"], made["spouse"], made["child"]
    namesake = await create_customer(api, store_id=store["id"], name=customer["name"])
    tasks = await eventually(lambda: _tasks(api, customer["id"]), timeout=60)
    # (The refund below the sale may already have closed its product's plan.)
    assert tasks
    path = f"/customers/{customer['id']}"

    async with await caller_as(api, "store_manager", store_id=store["id"]) as manager:
        erased = await manager.post(f"{path}/erase", json={"reason": "customer_request"})
        assert erased.status_code == 200, erased.text
        assert erased.json() == {
            "id": customer["id"],
            "store_id": store["id"],
            "status": "erased",
            "merged_into": None,
            "version": erased.json()["version"],
        }
        # Irreversible: no second erasure, no change, no archive; a read answers the pointer.
        again = await manager.post(f"{path}/erase", json={"reason": "customer_request"})
        assert again.status_code == 409, again.text
        assert again.headers["content-type"] == "application/problem+json"
        assert (await manager.patch(path, json={"name": "王芳"})).status_code == 409
        assert (await manager.delete(path)).status_code == 409
        assert (await manager.get(path)).json() == erased.json()
        # Nor a new sale: it would tie fresh behaviour to the person the file no longer names.
        sale = {
            "purchased_at": days_ago(0),
            "items": [{"sku": made["product"]["sku"], "qty": 1}],
            "acknowledge_warnings": True,
        }
        refused = await manager.post(f"{path}/purchases", json=sale)
        assert refused.status_code == 409, refused.text
        assert "erased" in refused.json()["detail"]

    conn = await asyncpg.connect(stack.postgres.url("crm_customer", driver="postgresql"))
    try:
        row = dict(await conn.fetchrow("SELECT * FROM customer WHERE id = $1", customer["id"]))
        lines = await conn.fetch(
            "SELECT l.sku, l.qty, l.amount, p.total, p.store_id, p.purchased_at,"
            " p.acknowledged_warnings_encrypted FROM purchase p"
            " JOIN purchase_line l ON l.purchase_id = p.id WHERE p.customer_id = $1",
            customer["id"],
        )
        notes = await conn.fetch(
            "SELECT note, total FROM purchase_refund WHERE customer_id = $1", customer["id"]
        )
        replays = await conn.fetch(
            "SELECT body::text AS body FROM idempotency_record WHERE body->>'id' = $1",
            made["sale"]["id"],
        )
    finally:
        await conn.close()
    # Every personal column is empty; the pointer, owner and coarse statistics stay.
    for column in (
        "name_keys",
        "phones_encrypted",
        "email",
        "address",
        "id_number_encrypted",
        "health_encrypted",
        "health_consent_at",
        "deep",
        "ethnicity",
        "birthday",
        "wedding_anniversary",
        "referrer_id",
        "consents",
    ):
        assert row[column] is None, column
    assert row["phone_hashes"] == [] and row["phone_tails"] == []
    assert row["name"] == "已删除" and row["status"] == "erased"
    assert row["gender"] == "female" and row["approximate_age"] in (60, 70)  # born 1956
    assert row["owner_staff_id"] == customer["owner_staff_id"]
    assert "method" not in row["source"] and '"referral"' in row["source"]
    stored = " ".join(str(v) for v in row.values())
    for secret in (
        customer["name"],
        made["phone"][-8:],
        "文三路",
        "sima",
        "11010519491231002X",
        "退休",
    ):
        assert secret not in stored, secret
    # The sales figures stay, without what was written about the customer.
    assert [(r["sku"], r["qty"], str(r["amount"]), str(r["total"])) for r in lines] == [
        (made["product"]["sku"], 3, "240.00", "240.00")
    ]
    assert lines[0]["store_id"] == store["id"]
    assert lines[0]["acknowledged_warnings_encrypted"] is None
    assert [(n["note"], str(n["total"])) for n in notes] == [(None, "80.00")]
    assert len(replays) == 1 and "高血压" not in replays[0]["body"]

    # Relatives lose the entry, and say so on the broker; the erased file's event is empty.
    for relative in (spouse, child):
        listed = (await api.get(f"/customers/{relative['id']}/relations")).json()["items"]
        assert listed == []
    found = await _events(stack, {customer["id"]: 2, spouse["id"]: 2, child["id"]: 2})
    [erased_event] = [e for e in found[customer["id"]] if e.type == "customer.erased"]
    file = erased_event.payload["file"]
    assert file["status"] == "erased" and file["version"] == row["version"]
    assert file["birthday"] is None and file["wedding_anniversary"] is None
    assert file["relations"] == [] and file["referrer_id"] is None
    assert file["consents"]["sms"] == {"granted": False, "at": None, "channel": None}
    for relative in (spouse, child):
        [updated] = [e for e in found[relative["id"]] if e.type == "customer.updated"]
        assert updated.payload["changed"] == ["relations"]
        assert updated.payload["file"]["relations"] == []

    # Engagement closes the customer's tasks.
    async def closed() -> list[dict[str, Any]] | None:
        now = await _tasks(api, customer["id"])
        return now if all(t["status"] not in OPEN for t in now) else None

    after = await eventually(closed, timeout=60)
    # The refunded product's plan was closed by the refund already; the rest by the erasure.
    assert {t["closed_reason"] for t in after if t["status"] == "closed"} <= {"erased", "refunded"}

    # Search finds the namesake, never the erased file, by name or phone.
    async def search(q: str) -> list[str]:
        response = await api.get("/customers", params={"q": q, "store_id": store["id"]})
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert await search(customer["name"]) == [namesake["id"]]
    assert await search(made["phone"]) == []
    assert await search(made["phone"][-4:]) == []

    entries = await _audit(api, customer["id"])
    [erasure] = [e for e in entries if e["action"] == "erase"]
    assert erasure["resource"] == f"customer/{customer['id']}?reason=customer_request"
    assert erasure["role"] == "store_manager" and erasure["status"] == 200
    assert set(erasure["fields"]) >= {
        "name",
        "phones",
        "id_number",
        "health",
        "address",
        "email",
        "deep",
        "birthday",
        "relations",
        "source.method",
    }
    for relative in (spouse, child):
        relative_entries = await _audit(api, relative["id"])
        assert any(e["fields"] == ["relations"] for e in relative_entries)


async def test_an_erased_files_export_holds_only_what_is_left(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    made = await _a_full_file(api, store["id"])
    customer = made["customer"]
    erased = await api.post(f"/customers/{customer['id']}/erase", json={"reason": "other"})
    assert erased.status_code == 200, erased.text
    exported = (await api.get(f"/customers/{customer['id']}/export")).json()
    text = str(exported)
    for secret in (customer["name"], made["phone"], "11010519491231002X", "青霉素", "女儿"):
        assert secret not in text, secret
    assert exported["file"]["status"] == "erased"
    assert [p["total"] for p in exported["purchases"]] == ["240.00"]
    assert exported["purchases"][0]["acknowledgement"]["warnings"] == []
    assert exported["relations"] == []


async def test_an_imported_file_names_its_import_and_erasure_forgets_the_rows_fingerprint(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    name, phone = _name(), _mobile()
    sheet = f"姓名,手机,生日\n{name},{phone},1950-05-06\n".encode()
    upload = await api.post(
        "/imports",
        data={"store_id": store["id"], "kind": "customers"},
        files={"file": ("会员.csv", sheet, "application/octet-stream")},
    )
    assert upload.status_code == 202, upload.text
    job_id = upload.json()["id"]

    async def done() -> dict[str, Any] | None:
        job = (await api.get(f"/imports/{job_id}")).json()
        return job if job["status"] in ("done", "failed") else None

    assert (await eventually(done, timeout=60))["status"] == "done"
    [customer] = (await api.get("/customers", params={"q": phone, "store_id": store["id"]})).json()[
        "items"
    ]

    exported = (await api.get(f"/customers/{customer['id']}/export")).json()
    assert exported["imports"]["from_import"] is True
    assert [
        (j["id"], j["kind"], j["filename"], j["rows"]) for j in exported["imports"]["jobs"]
    ] == [(job_id, "customers", "会员.csv", 1)]

    erased = await api.post(f"/customers/{customer['id']}/erase", json={"reason": "other"})
    assert erased.status_code == 200, erased.text
    conn = await asyncpg.connect(stack.postgres.url("crm_customer", driver="postgresql"))
    try:
        kept = await conn.fetchval(
            "SELECT count(*) FROM import_fingerprint WHERE record_id = $1", customer["id"]
        )
    finally:
        await conn.close()
    assert kept == 0
