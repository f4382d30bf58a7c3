"""Prometheus metrics: requests by route template, the database pool, and the ``/metrics`` page.

Everything is on the default registry, so the page also carries the metrics the relay and the
consumers define in their own modules, and the process collector's CPU and memory.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from threading import Thread
from wsgiref.simple_server import WSGIServer

from fastapi import FastAPI
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info
from sqlalchemy.pool import QueuePool

# Module-level so that a second app in one process (tests) shares them instead of clashing.
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "Requests by method, route template and status code.",
    ["method", "handler", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival until its response is complete, by route template.",
    ["method", "handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def _record_request(info: Info) -> None:
    # The instrumentator's default set adds two size summaries and a second histogram per
    # request; the request path is hot, so only the counter and one histogram are kept.
    HTTP_REQUESTS.labels(info.method, info.modified_handler, info.modified_status).inc()
    HTTP_LATENCY.labels(info.method, info.modified_handler).observe(info.modified_duration)


def instrument_app(app: FastAPI, *, serve_metrics: bool = True) -> None:
    """Count and time ``app``'s requests, watch its database pool, and (by default) serve
    ``/metrics`` on the app itself.

    Handlers are route templates (``/customers/{customer_id}``); paths no route matches are
    counted as ``none``, so neither ids nor a scanner's guesses make new series. The public
    gateway passes ``serve_metrics=False`` and serves them on a port of its own instead.
    """
    instrumentator = Instrumentator(
        should_group_status_codes=False,  # 404, 409 and 429 mean different things to operators
        should_group_untemplated=True,
    )
    instrumentator.add(_record_request)
    instrumentator.instrument(app)
    if serve_metrics:
        instrumentator.expose(app, endpoint="/metrics", include_in_schema=False)
    _POOLS.watch(app)


def serve_metrics_on_port(*, host: str, port: int) -> tuple[WSGIServer, Thread]:
    """Serve the default registry on ``host:port`` from a daemon thread; shut the server down
    (``server.shutdown()``, ``server.server_close()``) when the app stops."""
    return start_http_server(port, addr=host)


class DatabasePoolCollector(Collector):
    """Reads each watched app's SQLAlchemy pool (``app.state.engine``) when Prometheus scrapes.

    Nothing is counted on the request path: the pool already keeps these numbers.
    """

    def __init__(self) -> None:
        # Weak, so apps built and dropped by tests are not kept alive by the registry.
        self._apps: weakref.WeakSet[FastAPI] = weakref.WeakSet()

    def watch(self, app: FastAPI) -> None:
        self._apps.add(app)

    def collect(self) -> Iterator[Metric]:
        gauges = {
            "size": GaugeMetricFamily(
                "db_pool_size", "Connections the pool keeps open.", labels=["database"]
            ),
            "checked_out": GaugeMetricFamily(
                "db_pool_checked_out", "Connections in use right now.", labels=["database"]
            ),
            "checked_in": GaugeMetricFamily(
                "db_pool_checked_in", "Open connections waiting in the pool.", labels=["database"]
            ),
            "overflow": GaugeMetricFamily(
                "db_pool_overflow",
                "Connections open beyond the pool size (a pool too small for the load).",
                labels=["database"],
            ),
        }
        totals: dict[str, dict[str, int]] = {}
        for app in list(self._apps):
            engine = getattr(app.state, "engine", None)
            pool = getattr(engine, "pool", None)
            if engine is None or not isinstance(pool, QueuePool):
                continue  # not started yet, or a pool without these counters
            values = totals.setdefault(str(engine.url.database), dict.fromkeys(gauges, 0))
            values["size"] += pool.size()
            values["checked_out"] += pool.checkedout()
            values["checked_in"] += pool.checkedin()
            # Starts at -size and counts every connection opened, so only > 0 is overflow.
            values["overflow"] += max(pool.overflow(), 0)
        for database, values in totals.items():
            for key, gauge in gauges.items():
                gauge.add_metric([database], values[key])
        yield from gauges.values()


_POOLS = DatabasePoolCollector()
REGISTRY.register(_POOLS)
