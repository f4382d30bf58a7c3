"""A sparse read of customer files through the gateway (``GET /customers?ids=&fields=id,name``,
and ``gender``, ``has_phone`` as a campaign addresses its recipients): each file's id and the
fields asked for alone, within the caller's store, the name as the whole file shows it to each
role, in pages; nothing decrypted or disclosed, so no audit entry where the whole files' read
names the numbers; any other field a 422 naming ``fields``."""

from datetime import UTC, datetime
from typing import Any

import httpx

from crm_devstack.fixtures import eventually
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_store,
    sign_in,
    unique,
)
from tests.test_care_messages import a_mobile


async def _audited(
    api: httpx.AsyncClient, request_id: str, *, since: datetime
) -> list[dict[str, Any]]:
    """The trail's entries of ``request_id`` among those written since the test began (the
    whole trail of a long run holds more than a page)."""
    response = await api.get("/audit", params={"limit": 500, "from": since.isoformat()})
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["request_id"] == request_id]


async def _written(
    api: httpx.AsyncClient, request_id: str, *, since: datetime
) -> list[dict[str, Any]]:
    """``request_id``'s entries once the trail has them (it is written after the answer)."""

    async def found() -> list[dict[str, Any]] | None:
        return await _audited(api, request_id, since=since) or None

    return await eventually(found)


async def test_a_sparse_read_gives_ids_and_names_alone_in_the_callers_store(
    api: httpx.AsyncClient,
) -> None:
    began = datetime.now(UTC)
    store = await create_store(api)
    other = await create_store(api)
    phone = a_mobile()
    files = [
        await create_customer(
            api,
            store_id=store["id"],
            name="赵敏",
            phone=phone,
            id_number="11010519491231002X",
            email="zhao.min@example.com",
        ),
        await create_customer(api, store_id=store["id"], name="周芷若", phone=a_mobile()),
        await create_customer(api, store_id=store["id"], name="小昭"),
    ]
    theirs = await create_customer(api, store_id=other["id"], name="殷离", phone=a_mobile())
    ids = [f["id"] for f in files] + [theirs["id"]]

    callers = {"hq_admin": api}
    for role in ("store_manager", "staff"):
        account = await create_account(api, role=role, store_id=store["id"])
        callers[role] = client_as(api, token=(await sign_in(api, account))["access_token"])
    key = await api.post("/api-keys", json={"store_id": store["id"], "name": unique("k")})
    callers["partner"] = client_as(api, key=key.json()["key"])
    unaudited: list[str] = []
    try:
        for role, caller in callers.items():
            params: dict[str, Any] = {"ids": ids, "limit": len(ids)}
            if role == "hq_admin":
                params["store_id"] = store["id"]
            whole = await caller.get("/customers", params=params)
            assert whole.status_code == 200, (role, whole.text)
            request_id = unique("sparse")
            sparse = await caller.get(
                "/customers",
                params={**params, "fields": "id,name"},
                headers={"X-Request-ID": request_id},
            )
            assert sparse.status_code == 200, (role, sparse.text)
            # The same files, in the same order, with the name as the whole file shows it.
            assert sparse.json() == {
                "items": [{"id": f["id"], "name": f["name"]} for f in whole.json()["items"]],
                "next_cursor": None,
            }, role
            assert [i["id"] for i in sparse.json()["items"]] == sorted(f["id"] for f in files)
            # Nothing shown whole, so nothing on the audit trail for this request (checked
            # once the whole read's entry below is there: the trail is written after answering).
            unaudited.append(request_id)
            # What a campaign addresses its recipients by: the gender, and whether there is a
            # number (known from its lookup hashes, the number itself neither read nor shown).
            addressed_id = unique("addressed")
            addressed = await caller.get(
                "/customers",
                params={**params, "fields": "has_phone,gender,name"},
                headers={"X-Request-ID": addressed_id},
            )
            assert addressed.status_code == 200, (role, addressed.text)
            assert addressed.json()["items"] == [
                {
                    "id": f["id"],
                    "name": f["name"],
                    "gender": f["gender"],
                    "has_phone": bool(f["phones"]),
                }
                for f in whole.json()["items"]
            ], role
            assert [i["has_phone"] for i in addressed.json()["items"]] == [
                f["id"] != files[2]["id"] for f in sorted(files, key=lambda f: f["id"])
            ]
            unaudited.append(addressed_id)

        manager = callers["store_manager"]
        # The whole files' read shows the manager the numbers and names them on the trail.
        noted = unique("whole")
        whole = await manager.get(
            "/customers", params={"ids": ids}, headers={"X-Request-ID": noted}
        )
        assert whole.json()["items"][0]["phone"]
        assert [e["fields"] for e in await _written(api, noted, since=began)] == [
            ["email", "id_number", "phone"]
        ]

        # `name` alone is the same read; pages of one walk the three once.
        walked, cursor = [], None
        while True:
            params = {"ids": ids, "fields": "name", "limit": 1}
            if cursor:
                params["cursor"] = cursor
            page = (await manager.get("/customers", params=params)).json()
            walked += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert walked == sparse.json()["items"]

        # A longer tail of a number the manager sees whole: found on the numbers, none shown.
        tail = unique("tail")
        found = await manager.get(
            "/customers",
            params={"q": phone[-6:], "fields": "id,name"},
            headers={"X-Request-ID": tail},
        )
        assert found.status_code == 200, found.text
        assert found.json()["items"] == [{"id": files[0]["id"], "name": "赵敏"}]
        unaudited.append(tail)

        for asked in ("phone", "id,name,phone", "health", "name,", "id_number"):
            refused = await manager.get("/customers", params={"ids": ids, "fields": asked})
            assert refused.status_code == 422, (asked, refused.text)
            assert [e["field"] for e in refused.json()["errors"]] == ["fields"], asked

        # A last disclosing read, awaited on the trail: the sparse reads before it had their
        # chance to be written, and none was.
        last = unique("last")
        await manager.get("/customers", params={"ids": ids}, headers={"X-Request-ID": last})
        await _written(api, last, since=began)
        for request_id in unaudited:
            assert await _audited(api, request_id, since=began) == [], request_id
    finally:
        for role, caller in callers.items():
            if role != "hq_admin":
                await caller.aclose()
