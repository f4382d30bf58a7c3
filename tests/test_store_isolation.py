"""Store isolation, generated from the merged OpenAPI document: every route is tried by store A
against store B's resources, so a new route is covered without anyone adding it here."""

from typing import Any

import httpx
import pytest

from crm_devstack.stack import LocalStack
from crm_gateway.access import POLICY as GATEWAY_POLICY
from crm_libs.access import operation
from tests.builders import caller_as, create_store
from tests.route_walk import VALID_VALUES, body_of, operations, path_names, stocked_store, url_of


@pytest.mark.parametrize("role", ["store_manager", "staff", "partner"])
async def test_store_a_never_reaches_store_b(
    stack: LocalStack, api: httpx.AsyncClient, document: dict[str, Any], role: str
) -> None:
    # A store full of resources that store A must never reach, named by every field that may
    # name them; the catalogue is the whole chain's, so a product's sku is no secret of B's.
    phone = "13900001111"
    b = await stocked_store(api, phone=phone)
    del b["sku"]
    b |= {"referrer_id": b["related_customer_id"], "owner_staff_id": b["staff_id"], "phone": phone}
    store_a = await create_store(api)
    secrets = list(b.values())
    walked = [
        (method, path, op)
        for method, path, op in operations(document)
        if operation(method, path) not in GATEWAY_POLICY.public
    ]
    assert len(walked) >= 15, "the merged document lost routes"
    caller = await caller_as(api, role, store_id=store_a["id"])
    try:
        for number, (method, path, op) in enumerate(walked):
            if role == "partner" and number and number % 8 == 0:
                # A key's rate limit in this stack is low (to test it): a fresh key of the same
                # store every few operations keeps the walk from turning into 429s.
                await caller.aclose()
                caller = await caller_as(api, role, store_id=store_a["id"])
            names = path_names(path)
            url = url_of(path, b)
            # Unfiltered, and filtered by each of B's resources in turn (filters combine with AND).
            scoped = [
                {p["name"]: b[p["name"]]}
                for p in op.get("parameters", [])
                if p.get("in") == "query" and p["name"] in b
            ]
            body = body_of(op, document, VALID_VALUES | b)
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
