"""Function-level authorization (OWASP API5), generated from the merged OpenAPI document: every
operation is tried by every role against its own store's resources, so store scope is never what
refuses, and must answer as the deployables' declared policies say. A new route is covered
without anyone adding it here, and one missing from its policy fails."""

from typing import Any

import httpx

from crm_gateway.access import POLICY as GATEWAY_POLICY
from crm_gateway.routes import API_PREFIX, owner_of
from crm_libs.access import AccessPolicy, operation
from crm_libs.principal import Role
from customer_service.access import POLICY as CUSTOMER_POLICY
from engagement_service.access import POLICY as ENGAGEMENT_POLICY
from scoring_service.access import POLICY as SCORING_POLICY
from tests.builders import caller_as, client_as, create_account, create_store, sign_in, unique
from tests.route_walk import body_of, operations, stocked_store, url_of

SERVICE_POLICIES: dict[str, AccessPolicy] = {
    "customer": CUSTOMER_POLICY,
    "engagement": ENGAGEMENT_POLICY,
    "scoring": SCORING_POLICY,
}
# A key's rate limit in the test stack is low (to test it): a fresh key of the same store every
# so many operations keeps the walk from turning into 429s.
PARTNER_OPERATIONS_PER_KEY = 25


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


async def _callers(api: httpx.AsyncClient, own: dict[str, str]) -> dict[Role, httpx.AsyncClient]:
    callers = {Role.HQ_ADMIN: client_as(api, token=api.headers["authorization"].split()[1])}
    for role in (Role.STORE_MANAGER, Role.STAFF, Role.EXPERT, Role.PARTNER):
        # Staff and experts are the roster's staff member the paths name (their own statistics).
        staff = {"staff_id": own["staff_id"]} if role in (Role.STAFF, Role.EXPERT) else {}
        callers[role] = await caller_as(api, role.value, store_id=own["store_id"], **staff)
    return callers


def test_every_operation_of_the_document_is_declared(document: dict[str, Any]) -> None:
    walked = operations(document)
    assert len(walked) >= 20, "the merged document lost routes"
    for method, path, _ in walked:
        declared_roles(method, path)


async def test_every_role_is_answered_as_its_policy_declares(
    api: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    # Its own store's resources, so store scope is never what refuses; a role every caller
    # allowed to manage accounts may grant (and valid on the roster). No valid values for the
    # other fields: a body the route's own checks refuse (422) still shows the role passed.
    own = await stocked_store(api, phone="13700002222") | {"role": "staff"}
    callers = await _callers(api, own)
    refused: list[str] = []
    try:
        for number, (method, path, op) in enumerate(operations(document)):
            if number and number % PARTNER_OPERATIONS_PER_KEY == 0:
                await callers[Role.PARTNER].aclose()
                callers[Role.PARTNER] = await caller_as(api, "partner", store_id=own["store_id"])
            allowed = declared_roles(method, path)
            url = url_of(path, own)
            for role, caller in callers.items():
                body = body_of(op, document, own)
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
