"""Function-level authorization (OWASP API5), generated from the merged OpenAPI document: every
operation is tried by every role against its own store's resources, so store scope is never what
refuses, and must answer as the deployables' declared policies say. A new route is covered
without anyone adding it here, and one missing from its policy fails."""

import re
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_gateway.access import POLICY as GATEWAY_POLICY
from crm_gateway.routes import API_PREFIX, owner_of
from crm_libs.access import AccessPolicy, operation
from crm_libs.principal import Role
from customer_service.access import POLICY as CUSTOMER_POLICY
from engagement_service.access import POLICY as ENGAGEMENT_POLICY
from scoring_service.access import POLICY as SCORING_POLICY
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
    unique,
)

SERVICE_POLICIES: dict[str, AccessPolicy] = {
    "customer": CUSTOMER_POLICY,
    "engagement": ENGAGEMENT_POLICY,
    "scoring": SCORING_POLICY,
}
# Fields whose value must be new on every call, so an allowed create really creates.
FRESH = {"username", "code", "sku"}


def declared_roles(method: str, path: str) -> frozenset[Role]:
    """The roles the owning deployable's policy allows for an operation of the merged document
    (every role for a public one); an operation no policy declares fails the test."""
    own = operation(method, path)
    if own in GATEWAY_POLICY.public:
        return frozenset(Role)
    if own in GATEWAY_POLICY.operations:
        return GATEWAY_POLICY.operations[own]
    service_path = path.removeprefix(API_PREFIX)
    service = owner_of(service_path)
    assert service is not None, f"{own}: no deployable answers it"
    policy = SERVICE_POLICIES[service]
    declared = operation(method, service_path)
    assert declared in policy.operations, f"{declared}: missing from the {service} policy"
    return policy.operations[declared]


def _example(
    schema: dict[str, Any], document: dict[str, Any], own: dict[str, str], name: str = ""
) -> Any:
    """A plausible value for a schema, naming the caller's own store's resources by field name."""
    if "$ref" in schema:
        ref = schema["$ref"].rsplit("/", 1)[-1]
        return _example(document["components"]["schemas"][ref], document, own, name)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            options = [s for s in schema[combinator] if s.get("type") != "null"]
            return _example(options[0], document, own, name) if options else None
    if name in own:
        return own[name]
    if name in FRESH:
        return unique("r")
    if "const" in schema:  # a one-value Literal
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _example(v, document, own, k) for k, v in props.items()}
    if kind == "array":
        return [_example(schema.get("items", {}), document, own, name)]
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
    if name.endswith("price"):
        return "1.00"
    return "x" * max(1, int(schema.get("minLength", 1)))


async def _own_store(api: httpx.AsyncClient) -> dict[str, str]:
    """A store with one of everything a path or body may name, scored so reads find it."""
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"], phone="13700002222")
    relative = await create_customer(api, store_id=store["id"])
    # Merged into the customer by the first role allowed to (later ones meet the pointer: 409).
    duplicate = await create_customer(api, store_id=store["id"])
    staff = await create_staff(api, store_id=store["id"])
    imported = await create_import(api, store_id=store["id"])
    purchase = await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    await score_with_purchases(api, customer["id"])

    async def tasks() -> list[dict[str, Any]] | None:
        items = (await api.get("/tasks", params={"customer_id": customer["id"]})).json()["items"]
        return items or None

    # The purchase's plan: a task each allowed role may complete, reschedule or reassign (once
    # done, the later ones meet a 409, which is neither the role nor store scope refusing).
    task = (await eventually(tasks))[0]

    async def file_known() -> bool:
        # Visits need engagement's copy of the file (another topic than the purchase's).
        body = {"customer_id": customer["id"], "method": "phone", "outcome": "reached"}
        body |= {"staff_id": staff["id"], "occurred_at": datetime.now(UTC).isoformat()}
        return (await api.post("/visits", json=body)).status_code == 201

    await eventually(file_known)
    # A complaint about the customer, waiting for its first step (the first role allowed to
    # takes it; the later ones meet a 409 naming the step expected).
    complaint = await api.post(
        "/complaints",
        json={"customer_id": customer["id"], "points": "dented tin", "category": "quality"},
    )
    assert complaint.status_code == 201, complaint.text
    # A member event the customer is invited to (engagement knows the file by now): a reply
    # and a check-in name them.
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
    invited = await api.post(
        f"/events/{event.json()['id']}/invitations", json={"customer_ids": [customer["id"]]}
    )
    assert invited.status_code == 200, invited.text
    # A transactional template: every allowed role's message to the customer goes (no consent
    # or frequency cap stops a notice).
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
    target = await create_account(api, role="staff", store_id=store["id"])
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
        "account_id": target["id"],
        "key_id": key["id"],
        "complaint_id": complaint.json()["id"],
        "event_id": event.json()["id"],
        "template_id": template.json()["id"],
        "campaign_id": campaign.json()["id"],
        "sku": product["sku"],
        # A role every caller allowed to manage accounts may grant (and valid on the roster).
        "role": "staff",
    }


async def _callers(
    api: httpx.AsyncClient, store_id: str, staff_id: str
) -> dict[Role, httpx.AsyncClient]:
    callers = {Role.HQ_ADMIN: client_as(api, token=api.headers["authorization"].split()[1])}
    for role in (Role.STORE_MANAGER, Role.STAFF, Role.EXPERT):
        # Staff and experts are the roster's staff member the paths name (their own statistics).
        own = staff_id if role in (Role.STAFF, Role.EXPERT) else None
        account = await create_account(api, role=role.value, store_id=store_id, staff_id=own)
        callers[role] = client_as(api, token=(await sign_in(api, account))["access_token"])
    callers[Role.PARTNER] = await _partner(api, store_id)
    return callers


async def _partner(api: httpx.AsyncClient, store_id: str) -> httpx.AsyncClient:
    key = (await api.post("/api-keys", json={"store_id": store_id, "name": "partner"})).json()
    return client_as(api, key=key["key"])


# A key's rate limit in the test stack is low (to test it): a fresh key of the same store every
# so many operations keeps the walk from turning into 429s.
PARTNER_OPERATIONS_PER_KEY = 25


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [
        (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    # Revocations and archiving last, so the other operations still find what they name.
    return sorted(found, key=lambda o: o[0] == "delete")


@pytest.fixture(scope="module")
async def document(stack: LocalStack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.url("gateway")) as client:
        return (await client.get("/openapi.json")).json()


def test_every_operation_of_the_document_is_declared(document: dict[str, Any]) -> None:
    operations = _operations(document)
    assert len(operations) >= 20, "the merged document lost routes"
    for method, path, _ in operations:
        declared_roles(method, path)


async def test_every_role_is_answered_as_its_policy_declares(
    api: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    own = await _own_store(api)
    callers = await _callers(api, own["store_id"], own["staff_id"])
    refused: list[str] = []
    try:
        for number, (method, path, op) in enumerate(_operations(document)):
            if number and number % PARTNER_OPERATIONS_PER_KEY == 0:
                await callers[Role.PARTNER].aclose()
                callers[Role.PARTNER] = await _partner(api, own["store_id"])
            allowed = declared_roles(method, path)
            url = path.removeprefix(API_PREFIX)
            for name in re.findall(r"{([^}]+)}", path):
                assert name in own, f"{path}: teach this test which resource {name!r} names"
                url = url.replace("{" + name + "}", own[name])
            content = op.get("requestBody", {}).get("content", {})
            for role, caller in callers.items():
                body = None
                if "application/json" in content:
                    body = _example(content["application/json"]["schema"], document, own)
                response = await caller.request(method.upper(), url, json=body)
                where = f"{role.value}: {method.upper()} {path} -> {response.status_code} "
                where += response.text[:300]
                assert response.status_code < 500, where
                if operation(method, path) in GATEWAY_POLICY.public:
                    assert response.status_code != 403, where  # made-up credentials: a 401
                elif role in allowed:
                    # Its own store's resources: neither the role nor store scope refuses.
                    assert response.status_code not in (401, 403, 404), where
                else:
                    assert response.status_code == 403, where
                    assert response.headers["content-type"] == "application/problem+json", where
                    assert response.json()["title"] == "Forbidden", where
                    refused.append(f"{role.value} {method.upper()} {path}")
    finally:
        for caller in callers.values():
            await caller.aclose()
    # The matrix refused something of everyone but head office, partners included.
    assert {r.split()[0] for r in refused} == {r.value for r in Role} - {"hq_admin"}


async def test_a_store_manager_manages_only_accounts_below_their_own_role(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    manager = await create_account(api, role="store_manager", store_id=store["id"])
    peer = await create_account(api, role="store_manager", store_id=store["id"])
    token = (await sign_in(api, manager))["access_token"]
    body = {"password": "a long password", "store_id": store["id"]}
    async with client_as(api, token=token) as client:
        for role in ("staff", "expert"):
            opened = await client.post(
                "/accounts", json={**body, "role": role, "username": unique(role)}
            )
            assert opened.status_code == 201, opened.text
        appointed = await client.post(
            "/accounts", json={**body, "role": "store_manager", "username": unique("m")}
        )
        promoted = await client.patch(
            f"/accounts/{opened.json()['id']}", json={"role": "store_manager"}
        )
        # A peer's new password would let one manager sign in as the other.
        taken_over = await client.patch(
            f"/accounts/{peer['id']}", json={"password": "mine now, mine"}
        )
        disabled = await client.patch(f"/accounts/{peer['id']}", json={"status": "disabled"})
        for refused in (appointed, promoted, taken_over, disabled):
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
    assert (await sign_in(api, peer))["access_token"]
    # Head office appoints managers.
    assert (await create_account(api, role="store_manager", store_id=store["id"]))["id"]
