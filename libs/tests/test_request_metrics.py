"""Request metrics label each request by the route the router chose: the template, also for a
wrong method; ``none`` for a path no route serves, so ids never make new series."""

import httpx
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY

from crm_libs.metrics import instrument_app


def _count(handler: str, method: str, status: str) -> float:
    labels = {"method": method, "handler": handler, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def _timed(handler: str, method: str) -> float:
    labels = {"method": method, "handler": handler}
    return REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0.0


async def test_requests_are_counted_and_timed_by_route_template() -> None:
    app = FastAPI()
    things = APIRouter(prefix="/metric-things")

    @things.get("/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    app.include_router(things)
    instrument_app(app, serve_metrics=False)
    template = "/metric-things/{thing_id}"
    before = {
        "ok": _count(template, "GET", "200"),
        "wrong method": _count(template, "POST", "405"),
        "unrouted": _count("none", "GET", "404"),
        "timed": _timed(template, "GET"),
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as client:
        statuses = [
            (await client.get("/metric-things/1")).status_code,
            (await client.get("/metric-things/2")).status_code,
            (await client.post("/metric-things/3")).status_code,
            (await client.get("/no-such-route/4")).status_code,
        ]
    assert statuses == [200, 200, 405, 404]
    after = {
        "ok": _count(template, "GET", "200"),
        "wrong method": _count(template, "POST", "405"),
        "unrouted": _count("none", "GET", "404"),
        "timed": _timed(template, "GET"),
    }
    assert {k: after[k] - before[k] for k in after} == {
        "ok": 2,
        "wrong method": 1,
        "unrouted": 1,
        "timed": 2,
    }
    # No series per id or per unknown path.
    assert _count("/metric-things/1", "GET", "200") == 0
    assert _count("/no-such-route/4", "GET", "404") == 0
