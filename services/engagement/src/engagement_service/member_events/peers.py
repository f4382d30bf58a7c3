"""What member events (and a campaign's segment) ask of the customer service and scoring,
through engagement's one client (peer_client.py), as the caller or, for the guest-file job, as
the account that checked the guest in:

- the customer service: whether a store exists (head office names any), a guest's file by phone
  (``GET /customers?q=``), a guest's new prospect file (``POST /customers``);
- scoring: a segment's customers (``GET /scores`` with its filters, every page).

Errors come as peer_client's :class:`~engagement_service.peer_client.PeerUnavailable` and
:class:`~engagement_service.peer_client.Refused`; ``audit``: where the guest-file job's reads
go on the trail (peer_audit.py).
"""

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI

from engagement_service import peer_audit
from engagement_service.peer_client import call, pooled_client, unexpected

# Scoring's largest page: a segment of 10,000 customers is 20 requests.
_SEGMENT_PAGE = 500


async def store_exists(app: FastAPI, *, token: str, store_id: str) -> bool:
    """Whether the caller may see the store (``GET /stores/{id}``)."""
    path = f"/stores/{quote(store_id, safe='')}"
    response = await call(pooled_client(app), "GET", path, token=token)
    if response.status_code in (200, 404):
        return response.status_code == 200
    raise unexpected(path, response)


async def files_with_phone(
    app: FastAPI,
    *,
    token: str,
    store_id: str,
    phone: str,
    audit: peer_audit.Recorder | None = None,
) -> list[str]:
    """The store's active files with this whole phone number, oldest first; a number the
    customer service does not take is :class:`Refused`."""
    params = {"store_id": store_id, "q": phone, "status": "active", "limit": 10}
    response = await call(
        pooled_client(app), "GET", "/customers", token=token, audit=audit, params=params
    )
    if response.status_code != 200:
        raise unexpected("/customers", response)
    return sorted(item["id"] for item in response.json()["items"])


async def open_file(
    app: FastAPI, *, token: str, body: dict[str, Any], audit: peer_audit.Recorder | None = None
) -> str:
    """A new customer file (``POST /customers``): its id."""
    response = await call(
        pooled_client(app), "POST", "/customers", token=token, audit=audit, json=body
    )
    if response.status_code != 201:
        raise unexpected("/customers", response)
    return str(response.json()["id"])


async def segment_members(
    app: FastAPI, *, token: str, store_id: str, filters: dict[str, str]
) -> list[str]:
    """Every customer of the store in scoring's segment, all pages."""
    found: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"store_id": store_id, "limit": _SEGMENT_PAGE, **filters}
        if cursor:
            params["cursor"] = cursor
        response = await call(
            pooled_client(app, "scoring"), "GET", "/scores", token=token, params=params
        )
        if response.status_code != 200:
            raise unexpected("/scores", response)
        page = response.json()
        found.extend(item["customer_id"] for item in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return found
