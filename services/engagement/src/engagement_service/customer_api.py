"""The customer service's reads for engagement's routes, asked as the caller (peer_client.py):
the caller's signed principal is forwarded, so store scope and masking stay the customer
service's. Engagement keeps no names (its copy of the files carries none by contract) and no
roster: the work list's names and the staff statistics' staff member come from here.
"""

from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request

from engagement_service import peer_client


async def _get(request: Request, path: str, params: Any = None) -> httpx.Response:
    client = peer_client.pooled_client(request.app)
    response = await peer_client.send(
        client, "GET", path, token=peer_client.caller_token(request), params=params
    )
    # Any answer other than the one asked for is the customer service's fault here (a 422 too).
    await peer_client.note(response)
    return response


async def names_of(request: Request, customer_ids: list[str]) -> dict[str, str | None]:
    """The names of ``customer_ids`` the caller may see, in one request (``GET /customers?ids=``,
    at most a page's worth); a file the caller may not see is left out. A sparse read
    (``fields=id,name``): the customer service decrypts no numbers for a page of names, and
    discloses nothing."""
    if not customer_ids:
        return {}
    unique = sorted(set(customer_ids))
    response = await _get(
        request,
        "/customers",
        params={"ids": unique, "limit": len(unique), "status": "active", "fields": "id,name"},
    )
    if response.status_code != 200:
        raise peer_client.unexpected("/customers", response)
    return {item["id"]: item.get("name") for item in response.json()["items"]}


async def staff_member(request: Request, staff_id: str) -> dict[str, Any] | None:
    """The roster entry the caller may see (``GET /staff/{id}``), or None (404: unknown, or
    another store's)."""
    path = f"/staff/{quote(staff_id, safe='')}"
    response = await _get(request, path)
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise peer_client.unexpected(path, response)
    found: dict[str, Any] = response.json()
    return found
