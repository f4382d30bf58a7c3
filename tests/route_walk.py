"""Walking every operation of the merged OpenAPI document (the role matrix and store isolation
walk it alike, so a new route is covered without anyone adding it to either): the operations, a
path's URL and a valid body for each, naming the resources of a store stocked with one of
everything a path or body may name."""

import re
from datetime import UTC, date, datetime
from typing import Any

import httpx

from crm_devstack.fixtures import eventually
from crm_gateway.routes import API_PREFIX
from tests.builders import (
    create_account,
    create_customer,
    create_import,
    create_product,
    create_staff,
    create_store,
    record_purchase,
    score_with_purchases,
    unique,
)

# Fields whose rules a schema cannot state (a real time zone, an ID number's check digit): a
# value each, named with the resources, makes every generated body one the API would accept
# from the store itself.
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
# Fields whose value must be new on every call, so an allowed create really creates.
FRESH = {"username", "code", "sku"}
MONEY = r"^-?\d{0,10}(?:\.\d{0,2})?$"


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (method, path, operation) of the document; revocations and archiving last, so the
    other operations still find what they name."""
    found = [
        (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    return sorted(found, key=lambda o: o[0] == "delete")


def path_names(path: str) -> list[str]:
    return re.findall(r"{([^}]+)}", path)


def url_of(path: str, named: dict[str, str]) -> str:
    """The path below the API prefix, each parameter the named resource's id."""
    url = path.removeprefix(API_PREFIX)
    for name in path_names(path):
        assert name in named, f"{path}: teach route_walk.py which resource {name!r} names"
        url = url.replace("{" + name + "}", named[name])
    return url


def body_of(op: dict[str, Any], document: dict[str, Any], named: dict[str, str]) -> Any:
    """A JSON body for the operation (None where it takes none)."""
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return example(content["application/json"]["schema"], document, named)


def example(
    schema: dict[str, Any], document: dict[str, Any], named: dict[str, str], name: str = ""
) -> Any:
    """A valid value for a schema, naming the given resources wherever a field is named so."""
    if "$ref" in schema:
        ref = schema["$ref"].rsplit("/", 1)[-1]
        return example(document["components"]["schemas"][ref], document, named, name)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            options = [s for s in schema[combinator] if s.get("type") != "null"]
            return example(options[0], document, named, name) if options else None
    if name in named:
        return named[name]
    if name in FRESH:
        return unique("r")
    if "const" in schema:  # a one-value Literal
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: example(v, document, named, k) for k, v in props.items()}
    if kind == "array":
        return [example(schema.get("items", {}), document, named, name)]
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
    if schema.get("pattern") == MONEY or name.endswith("price"):
        return "1.00"
    return "x" * max(1, int(schema.get("minLength", 1)))


async def stocked_store(api: httpx.AsyncClient, *, phone: str) -> dict[str, str]:
    """A store with one of everything a path or body may name, scored so reads find it: each
    resource's id by the name a path or field gives it, and the product's sku. The customer has
    the phone."""
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"], phone=phone)
    relative = await create_customer(api, store_id=store["id"])
    # Merged into the customer by the first caller allowed to (later ones meet the pointer: 409).
    duplicate = await create_customer(api, store_id=store["id"])
    staff = await create_staff(api, store_id=store["id"])
    imported = await create_import(api, store_id=store["id"])
    purchase = await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    await score_with_purchases(api, customer["id"])

    async def tasks() -> list[dict[str, Any]] | None:
        items = (await api.get("/tasks", params={"customer_id": customer["id"]})).json()["items"]
        return items or None

    # The purchase's plan: a task each allowed caller may complete, reschedule or reassign (once
    # done, the later ones meet a 409, which is neither the role nor store scope refusing).
    task = (await eventually(tasks))[0]

    async def complaint() -> dict[str, Any] | None:
        # Once engagement has the file (another topic than the purchase's). It waits for its
        # first step: the first caller allowed to takes it, the later ones meet a 409.
        body = {"customer_id": customer["id"], "points": "dented tin", "category": "quality"}
        opened = await api.post("/complaints", json=body)
        return opened.json() if opened.status_code == 201 else None

    complained = await eventually(complaint)
    # A member event the customer is invited to: a reply and a check-in name them.
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
    invited = await api.post(
        f"/events/{event.json()['id']}/invitations", json={"customer_ids": [customer["id"]]}
    )
    assert invited.status_code == 200, invited.text
    # A transactional template: every allowed caller's message to the customer goes (no consent
    # or frequency cap stops a notice).
    template = await api.post(
        "/templates",
        json={"store_id": store["id"], "category": "transactional", "name": "n", "body": "已发货"},
    )
    assert template.status_code == 201, template.text
    # A birthday campaign of the store: read, previewed and sent (once) by the callers allowed.
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
    key = (await api.post("/api-keys", json={"store_id": store["id"], "name": "target"})).json()
    return {
        "store_id": store["id"],
        "customer_id": customer["id"],
        "related_customer_id": relative["id"],
        "duplicate_id": duplicate["id"],
        "import_id": imported["id"],
        "staff_id": staff["id"],
        "purchase_id": purchase["id"],
        "task_id": task["id"],
        "account_id": account["id"],
        "key_id": key["id"],
        "complaint_id": complained["id"],
        "event_id": event.json()["id"],
        "template_id": template.json()["id"],
        "campaign_id": campaign.json()["id"],
        "sku": product["sku"],
    }
