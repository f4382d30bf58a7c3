"""The report's figures scoring does not hold, asked of their services as the caller: the
caller's signed principal (``X-CRM-Principal``, as the gateway signed it) is forwarded, so each
service's own roles and store scope decide what the caller may read, as in engagement's
``customer_api.py``.

A peer that does not answer, answers late or with a server error costs its chart only: the
page says which figures are missing instead of failing (``PeerUnavailable``).
"""

from datetime import date
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request

from crm_libs.principal import PRINCIPAL_HEADER
from scoring_service.config import Settings


class PeerUnavailable(Exception):
    """A peer did not answer in time, or answered with something other than the figures."""


def _client(app: FastAPI) -> httpx.AsyncClient:
    # One pooled client per process, made on first use: its connections outlive the requests.
    client: httpx.AsyncClient | None = getattr(app.state, "peer_client", None)
    if client is None:
        settings: Settings = app.state.settings
        client = httpx.AsyncClient(timeout=settings.peer_timeout_seconds)
        app.state.peer_client = client
    return client


async def _get_json(request: Request, url: str, params: dict[str, Any]) -> Any:
    headers = {PRINCIPAL_HEADER: request.headers.get(PRINCIPAL_HEADER, "")}
    try:
        response = await _client(request.app).get(url, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise PeerUnavailable(str(exc) or type(exc).__name__) from exc
    if response.status_code != 200:
        raise PeerUnavailable(f"{url} answered {response.status_code}")
    return response.json()


def _store_path(base: str, store_id: str, tail: str) -> str:
    return f"{base.rstrip('/')}/stores/{quote(store_id, safe='')}/{tail}"


async def source_conversion(
    request: Request, *, store_id: str, start: date, end: date
) -> list[dict[str, Any]]:
    """The customer service's ``GET /stores/{id}/analysis/sources`` for the files opened from
    ``start`` to ``end``: per channel, files, converted and the rate. The file events scoring
    consumes carry no source channel, so scoring cannot count these itself."""
    settings: Settings = request.app.state.settings
    url = _store_path(settings.customer_url, store_id, "analysis/sources")
    answer = await _get_json(request, url, {"from": start.isoformat(), "to": end.isoformat()})
    items: list[dict[str, Any]] = answer["items"]
    return items


async def staff_completion(
    request: Request, *, store_id: str, start: date, end: date
) -> list[dict[str, Any]]:
    """Engagement's ``GET /stores/{id}/staff-stats`` over the month: each staff member's tasks
    due and completion rate, counted as the month's close counts them (for the current month,
    so far)."""
    settings: Settings = request.app.state.settings
    url = _store_path(settings.engagement_url, store_id, "staff-stats")
    answer = await _get_json(request, url, {"from": start.isoformat(), "to": end.isoformat()})
    items: list[dict[str, Any]] = answer["items"]
    return items


async def staff_names(request: Request, *, store_id: str) -> dict[str, str]:
    """The store's roster, id -> name (a store's roster is one page); empty when the customer
    service cannot say: the chart then names staff by id."""
    settings: Settings = request.app.state.settings
    url = f"{settings.customer_url.rstrip('/')}/staff"
    try:
        answer = await _get_json(request, url, {"store_id": store_id, "limit": 500})
    except PeerUnavailable:
        return {}
    return {item["id"]: item["name"] for item in answer["items"]}
