"""Operators' metrics: every service's /metrics on its own port, the gateway's on a port of its
own and never through the public API; requests by route template, the database pools."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import Topics
from tests.builders import (
    create_customer,
    create_product,
    create_store,
    record_purchase,
    score_with_purchases,
)

SERVICES = ("customer", "engagement", "scoring")
# What each metrics page must carry whatever else it holds.
REQUEST_COUNTER = "http_requests_total"
REQUEST_LATENCY_COUNT = "http_request_duration_seconds_count"

Labels = frozenset[tuple[str, str]]


async def scrape(url: str) -> dict[tuple[str, Labels], float]:
    """Every sample on a Prometheus page, by name and labels."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Mapping[tuple[str, Labels], float], name: str, **labels: str) -> float | None:
    """The sample named ``name`` whose labels include ``labels``; None when there is none."""
    wanted = set(labels.items())
    found = [v for (n, have), v in samples.items() if n == name and wanted <= have]
    assert len(found) <= 1, f"{name}{labels} is ambiguous: {found}"
    return found[0] if found else None


def total(samples: Mapping[tuple[str, Labels], float], name: str, **labels: str) -> float:
    """The sum of every sample named ``name`` whose labels include ``labels`` (any status)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def label_values(samples: Mapping[tuple[str, Labels], float]) -> set[str]:
    return {v for (_, labels) in samples for _, v in labels}


async def test_services_count_requests_by_route_template_never_by_id(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"])
    customer_id = customer["id"]
    before = {name: await scrape(stack.url(name) + "/metrics") for name in SERVICES}

    for _ in range(2):
        assert (await api.get(f"/customers/{customer_id}")).status_code == 200
    await api.get(f"/customers/{customer_id}/score")  # 200 or 404: counted either way
    assert (await api.get("/tasks", params={"customer_id": customer_id})).status_code == 200
    # A scanner's guesses on the service's own port: one series, not one per path.
    unknown = f"/no-such-route/{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=stack.url("customer"), timeout=10) as direct:
        assert (await direct.get(unknown)).status_code == 404

    after = {name: await scrape(stack.url(name) + "/metrics") for name in SERVICES}
    expected = {
        "customer": ("/customers/{customer_id}", 2),
        "scoring": ("/customers/{customer_id}/score", 1),
        "engagement": ("/tasks", 1),
    }
    for name, (handler, calls) in expected.items():
        labels = {"method": "GET", "handler": handler}
        counted = total(after[name], REQUEST_COUNTER, **labels) - total(
            before[name], REQUEST_COUNTER, **labels
        )
        assert counted >= calls, f"{name}: {handler} counted {counted} times, expected {calls}"
        timed = value(after[name], REQUEST_LATENCY_COUNT, method="GET", handler=handler)
        assert timed and timed >= calls, f"{name}: {handler} has no latency histogram"
        seen = label_values(after[name])
        assert not any(customer_id in v for v in seen), f"{name}: a raw id became a label"
    grouped = value(after["customer"], REQUEST_COUNTER, handler="none", status="404")
    assert grouped and grouped >= 1
    assert not any(unknown in v for v in label_values(after["customer"]))


async def test_every_process_reports_its_database_pool(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    await api.get("/stores")  # the gateway and customer have used their pools at least once
    pages = {name: stack.url(name) + "/metrics" for name in SERVICES}
    pages["gateway"] = f"http://127.0.0.1:{stack.ports.gateway_metrics}/metrics"
    for name, url in pages.items():
        samples = await scrape(url)
        database = f"crm_{name}"
        size = value(samples, "db_pool_size", database=database)
        assert size is not None and size > 0, f"{name}: no pool size"
        out = value(samples, "db_pool_checked_out", database=database)
        idle = value(samples, "db_pool_checked_in", database=database)
        overflow = value(samples, "db_pool_overflow", database=database)
        assert out is not None and idle is not None and overflow is not None, name
        assert 0 <= out <= size + overflow, name
        assert idle >= 1, f"{name}: the pool has opened no connection yet"


async def test_a_purchase_shows_in_outbox_and_consumer_metrics(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    """The relay's and the consumers' metrics (defined in relay.py and consumer.py) are on the
    services' pages: a purchase is published by customer and processed by scoring."""
    customer_page, scoring_page = (
        stack.url("customer") + "/metrics",
        stack.url("scoring") + "/metrics",
    )
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    published_before = total(
        await scrape(customer_page), "crm_outbox_published_total", topic=Topics.PURCHASES
    )
    processed_before = total(
        await scrape(scoring_page), "consumer_events_processed_total", topic=Topics.PURCHASES
    )

    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    await score_with_purchases(api, customer["id"])

    async def counted() -> dict[tuple[str, Labels], float] | None:
        # Counted after the batch's offsets are committed, a moment after the score is visible.
        samples = await scrape(scoring_page)
        processed = total(samples, "consumer_events_processed_total", topic=Topics.PURCHASES)
        return samples if processed > processed_before else None

    scoring = await eventually(counted, timeout=15)
    lag = [labels for (name, labels), _ in scoring.items() if name == "consumer_lag"]
    assert lag, "scoring reports no consumer lag"
    assert any(("topic", Topics.PURCHASES) in labels for labels in lag)
    assert all({"consumer", "topic", "partition"} <= {k for k, _ in labels} for labels in lag)

    customer_samples = await scrape(customer_page)
    published = total(customer_samples, "crm_outbox_published_total", topic=Topics.PURCHASES)
    assert published > published_before
    backlog = value(customer_samples, "crm_outbox_backlog")
    parked = value(customer_samples, "crm_outbox_parked_rows")
    assert backlog is not None and backlog >= 0
    assert parked is not None and parked >= 0


async def test_gateway_metrics_only_on_their_own_port(
    api: httpx.AsyncClient, stack: LocalStack, admin_token: str
) -> None:
    assert (await api.get("/stores")).status_code == 200
    samples = await scrape(f"http://127.0.0.1:{stack.ports.gateway_metrics}/metrics")
    proxied = value(
        samples, REQUEST_COUNTER, method="GET", handler="/api/v1/{path:path}", status="200"
    )
    assert proxied and proxied >= 1
    assert value(samples, "http_requests_total", handler="/api/v1/auth/token", status="200")

    bearer = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=10) as public:
        for path in ("/metrics", "/api/v1/metrics"):
            response = await public.get(path, headers=bearer)
            assert response.status_code == 404, path
            assert REQUEST_COUNTER not in response.text, path
    # Dot segments sent as is (httpx would resolve them before sending): the upstream URL
    # must not resolve them into a service's /metrics behind the route that matched.
    host, port = "127.0.0.1", stack.ports.gateway
    for path in (
        "/api/v1/customers/x/score/../../../metrics",
        "/api/v1/tasks/../metrics",
        "/api/v1/customers/%2e%2e/metrics",
    ):
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.request("GET", path, headers=bearer)
            response = connection.getresponse()
            body = response.read().decode()
        finally:
            connection.close()
        assert response.status != 200, f"{path} answered {response.status}"
        assert REQUEST_COUNTER not in body, f"{path} exposed a service's metrics"


async def test_gateway_counts_proxied_refusals_and_times_every_proxied_request(
    stack: LocalStack,
) -> None:
    # Proxied requests are answered before the gateway's route table and count themselves.
    page = f"http://127.0.0.1:{stack.ports.gateway_metrics}/metrics"
    template = "/api/v1/{path:path}"
    before = await scrape(page)
    async with httpx.AsyncClient(base_url=stack.url("gateway") + "/api/v1", timeout=10) as client:
        for _ in range(3):
            assert (await client.get("/stores")).status_code == 401
    after = await scrape(page)

    def counted(samples: Mapping[tuple[str, Labels], float], name: str, **labels: str) -> float:
        return value(samples, name, method="GET", handler=template, **labels) or 0.0

    refused = counted(after, REQUEST_COUNTER, status="401")
    assert refused - counted(before, REQUEST_COUNTER, status="401") == 3
    timed = counted(after, REQUEST_LATENCY_COUNT) - counted(before, REQUEST_LATENCY_COUNT)
    assert timed >= 3
