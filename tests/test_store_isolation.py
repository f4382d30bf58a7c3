"""Store isolation, generated from the merged OpenAPI document: every route is tried by store A
against store B's resources, so a new route is covered without anyone adding it here."""

import re
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_import,
    create_product,
    create_staff,
    create_store,
    record_purchase,
    score_with_purchases,
    sign_in,
)

PUBLIC = {("post", "/api/v1/auth/token"), ("post", "/api/v1/auth/refresh")}
# Fields whose rules a schema cannot state (a real time zone, an ID number's check digit): a
# value each, so that every generated body is one the API would accept from store B itself.
VALID_VALUES = {
    "timezone": "Asia/Shanghai",
    "id_number": "11010519491231002X",
    "email": "wang.fang@example.com",
    "birthday": "1950-01-01",
    # A store's tier rules: shares rising within (0, 1).
    "vip_share": "0.01",
    "major_share": "0.05",
    "medium_share": "0.20",
}


async def _store_b(api: httpx.AsyncClient) -> dict[str, str]:
    """A store full of resources that store A must never reach."""
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"], phone="13900001111")
    relative = await create_customer(api, store_id=store["id"])
    staff = await create_staff(api, store_id=store["id"])
    imported = await create_import(api, store_id=store["id"])
    purchase = await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    await score_with_purchases(api, customer["id"])

    async def tasks() -> list[dict[str, Any]] | None:
        items = (await api.get("/tasks", params={"customer_id": customer["id"]})).json()["items"]
        return items or None

    task = (await eventually(tasks))[0]

    async def complaint() -> dict[str, Any] | None:
        # Once engagement has the file (another topic than the purchase's).
        body = {"customer_id": customer["id"], "points": "dented tin", "category": "quality"}
        opened = await api.post("/complaints", json=body)
        return opened.json() if opened.status_code == 201 else None

    complained = await eventually(complaint)
    event = await api.post(
        "/events",
        json={
            "store_id": store["id"],
            "kind": "gathering",
            "title": "联谊会",
            "starts_at": datetime.now(UTC).isoformat(),
            "place": "hall",
            "capacity": 100,
        },
    )
    assert event.status_code == 201, event.text
    template = await api.post(
        "/templates",
        json={"store_id": store["id"], "category": "transactional", "name": "n", "body": "已发货"},
    )
    assert template.status_code == 201, template.text
    # A birthday campaign of the store: read, previewed and sent (once) by the roles allowed.
    birthday = await api.post(
        "/templates",
        json={"store_id": store["id"], "category": "birthday", "name": "b", "body": "生日快乐"},
    )
    campaign = await api.post(
        "/campaigns",
        json={
            "store_id": store["id"],
            "kind": "birthday",
            "template_id": birthday.json()["id"],
            "date_from": date.today().isoformat(),
        },
    )
    assert campaign.status_code == 201, campaign.text
    account = await create_account(api, role="staff", store_id=store["id"])
    key = (await api.post("/api-keys", json={"store_id": store["id"], "name": "b"})).json()
    return {
        "store_id": store["id"],
        "customer_id": customer["id"],
        "related_customer_id": relative["id"],
        "referrer_id": relative["id"],
        "duplicate_id": relative["id"],
        "import_id": imported["id"],
        "owner_staff_id": staff["id"],
        "staff_id": staff["id"],
        "purchase_id": purchase["id"],
        "task_id": task["id"],
        "account_id": account["id"],
        "key_id": key["id"],
        "complaint_id": complained["id"],
        "event_id": event.json()["id"],
        "template_id": template.json()["id"],
        "campaign_id": campaign.json()["id"],
        "phone": "13900001111",
    }


def _value_for(name: str, b: dict[str, str]) -> str:
    if name in b:
        return b[name]
    raise AssertionError(
        f"path parameter {name!r}: teach this test which of store B's resources it names"
    )


def _example(
    schema: dict[str, Any], document: dict[str, Any], b: dict[str, str], name: str = ""
) -> Any:
    """A valid value for a schema, aimed at store B wherever a field names a B resource."""
    if "$ref" in schema:
        ref = schema["$ref"].rsplit("/", 1)[-1]
        return _example(document["components"]["schemas"][ref], document, b, name)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            options = [s for s in schema[combinator] if s.get("type") != "null"]
            return _example(options[0], document, b, name) if options else None
    if name in b:
        return b[name]
    if name in VALID_VALUES:
        return VALID_VALUES[name]
    if "const" in schema:  # a one-value Literal
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _example(v, document, b, k) for k, v in props.items()}
    if kind == "array":
        return [_example(schema.get("items", {}), document, b, name)]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    fmt = schema.get("format")
    if fmt == "date-time":
        return datetime.now(UTC).isoformat()
    if fmt == "date":
        return date.today().isoformat()
    if schema.get("pattern") == r"^-?\d{0,10}(?:\.\d{0,2})?$" or name.endswith("price"):
        return "1.00"
    return "x" * max(1, int(schema.get("minLength", 1)))


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete") and (method, path) not in PUBLIC
    ]


@pytest.fixture(scope="module")
async def document(stack: LocalStack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.url("gateway")) as client:
        return (await client.get("/openapi.json")).json()


@pytest.mark.parametrize("role", ["store_manager", "staff", "partner"])
async def test_store_a_never_reaches_store_b(
    stack: LocalStack, api: httpx.AsyncClient, document: dict[str, Any], role: str
) -> None:
    b = await _store_b(api)
    store_a = await create_store(api)

    async def a_caller() -> httpx.AsyncClient:
        if role == "partner":
            body = {"store_id": store_a["id"], "name": "a"}
            return client_as(api, key=(await api.post("/api-keys", json=body)).json()["key"])
        account = await create_account(api, role=role, store_id=store_a["id"])
        return client_as(api, token=(await sign_in(api, account))["access_token"])

    secrets = [v for k, v in b.items() if k != "phone"] + [b["phone"]]
    operations = _operations(document)
    assert len(operations) >= 15, "the merged document lost routes"
    caller = await a_caller()
    try:
        for number, (method, path, op) in enumerate(operations):
            if role == "partner" and number and number % 8 == 0:
                # A key's rate limit in this stack is low (to test it): a fresh key of the same
                # store every few operations keeps the walk from turning into 429s.
                await caller.aclose()
                caller = await a_caller()
            names = re.findall(r"{([^}]+)}", path)
            url = path.removeprefix("/api/v1")
            for name in names:
                url = url.replace("{" + name + "}", _value_for(name, b))
            # Unfiltered, and filtered by each of B's resources in turn (filters combine with AND).
            scoped = [
                {p["name"]: b[p["name"]]}
                for p in op.get("parameters", [])
                if p.get("in") == "query" and p["name"] in b
            ]
            body = None
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = _example(content["application/json"]["schema"], document, b)
            for params in [{}, *scoped]:
                response = await caller.request(method.upper(), url, params=params, json=body)
                where = f"{role}: {method.upper()} {path} {params} -> {response.status_code} "
                where += response.text[:200]
                assert response.status_code < 500, where
                if names:
                    assert response.status_code in (401, 403, 404, 422), where
                if response.status_code == 422:
                    # The body is valid: only a reference to store B may be refused, by name.
                    aimed = {k for k, v in {**params, **(body or {})}.items() if v in b.values()}
                    refused = {e["field"] for e in response.json().get("errors", [])}
                    assert refused and refused <= aimed, where
                if response.is_success:
                    leaked = [s for s in secrets if s in response.text]
                    assert not leaked, where
    finally:
        await caller.aclose()
    # And store B's file is untouched by all of that.
    still = await api.get(f"/customers/{b['customer_id']}")
    assert still.status_code == 200 and still.json()["status"] == "active"
