"""Prometheus metrics: requests by route template, the database pool, and the ``/metrics`` page.

Everything is on the default registry, so the page also carries the metrics the relay and the
consumers define in their own modules, and the process collector's CPU and memory.

Under several uvicorn workers the devstack (or the image) sets ``PROMETHEUS_MULTIPROC_DIR``, a
directory cleared before the service starts: prometheus_client then keeps every value in a file per
process, and a page served by any worker adds them all up (``MultiProcessCollector``). Gauges say
how they combine (``multiprocess_mode``); a worker that exits removes its live gauges. The process
collector's CPU and memory are then the answering worker's only. Without the variable everything
stays in the process, as before.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

from fastapi import FastAPI
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy.pool import QueuePool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# Set (before prometheus_client is imported) when several worker processes share one page.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")

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


class RequestMetricsMiddleware:
    """Counts and times every request by method, route template and status code (pure ASGI).

    The template is the path of the route the router chose (``scope["route"]``, set by
    FastAPI's router for a full match and for a wrong method alike), read once the request is
    answered: the route table is not matched a second time, as the instrumentator's own
    middleware did on every request. Routes are never included under a prefix of their own
    (``crm_libs.access.require_declared`` refuses it), so a route's path is its template.
    Only the counter and one histogram: the instrumentator's default set added two size
    summaries and a second histogram per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The labelled children by label values: ``labels()`` takes a lock and builds a key.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if nothing was sent

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            handler = getattr(scope.get("route"), "path", None) or "none"
            key = (scope["method"], handler, status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (
                    HTTP_REQUESTS.labels(key[0], handler, str(status)),
                    HTTP_LATENCY.labels(key[0], handler),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


def instrument_app(app: FastAPI, *, serve_metrics: bool = True) -> None:
    """Count and time ``app``'s requests, watch its database pool, and (by default) serve
    ``/metrics`` on the app itself.

    Handlers are route templates (``/customers/{customer_id}``); paths no route matches are
    counted as ``none``, so neither ids nor a scanner's guesses make new series. The public
    gateway passes ``serve_metrics=False`` and serves them on a port of its own instead.
    """
    app.add_middleware(RequestMetricsMiddleware)
    if serve_metrics:
        instrumentator = Instrumentator()
        instrumentator.expose(app, endpoint="/metrics", include_in_schema=False)
    _POOLS.watch(app)
    if _POOL_MIRROR is not None:
        _POOL_MIRROR.start()


def scrape_registry() -> CollectorRegistry:
    """What a metrics page serves: this process's registry, or every worker's files added up."""
    if MULTIPROCESS_DIR is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def serve_metrics_on_port(
    *, host: str, port: int
) -> tuple[WSGIServer | SharedMetricsPort, Thread | None]:
    """Serve the metrics on ``host:port`` from a daemon thread; shut the server down
    (``server.shutdown()``, ``server.server_close()``) when the app stops.

    Under several workers only one process can bind the port, and any of them serves all their
    metrics: the others wait and take the port over when its holder exits.
    """
    if MULTIPROCESS_DIR is None:
        return start_http_server(port, addr=host)
    shared = SharedMetricsPort(host=host, port=port)
    return shared, shared.thread


class SharedMetricsPort:
    """The metrics port of one of several workers: whichever binds it first serves it."""

    RETRY_SECONDS = 1.0

    def __init__(self, *, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._server: WSGIServer | None = None
        self._serving: Thread | None = None
        if not self._try_bind():
            log.info(
                "metrics port held by another worker; waiting to take it over",
                extra={"fields": {"port": port}},
            )
        self.thread = Thread(target=self._hold, name="metrics-port", daemon=True)
        self.thread.start()

    def _try_bind(self) -> bool:
        try:
            server, serving = start_http_server(
                self._port, addr=self._host, registry=scrape_registry()
            )
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            return False
        with self._lock:
            if self._stopped.is_set():  # shut down while binding: give the port back
                server.shutdown()
                server.server_close()
                return True
            self._server, self._serving = server, serving
        return True

    def _hold(self) -> None:
        while self._server is None and not self._stopped.wait(self.RETRY_SECONDS):
            self._try_bind()

    def shutdown(self) -> None:
        with self._lock:
            self._stopped.set()
            server = self._server
        if server is not None:
            server.shutdown()

    def server_close(self) -> None:
        if self._server is not None:
            self._server.server_close()


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


class PoolGaugeMirror:
    """Under several workers, copies each worker's pool numbers into summed gauge files.

    A custom collector runs only in the process that answers the scrape, so each worker writes
    its numbers every second from a daemon thread instead (off the request path).
    """

    INTERVAL_SECONDS = 1.0

    def __init__(self, collector: DatabasePoolCollector) -> None:
        self._collector = collector
        # livesum: the workers' pools add up, and an exited worker's numbers leave the sum.
        self._gauges = {
            family.name: Gauge(
                family.name, family.documentation, ["database"], multiprocess_mode="livesum"
            )
            for family in collector.collect()
        }
        self._thread: Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = Thread(target=self._run, name="db-pool-metrics", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        stopped = threading.Event()
        while not stopped.wait(self.INTERVAL_SECONDS):
            try:
                families = list(self._collector.collect())
            except RuntimeError:  # an app was added while reading (start-up): next time
                continue
            for family in families:
                for sample in family.samples:
                    self._gauges[family.name].labels(**sample.labels).set(sample.value)


def _forget_this_worker() -> None:
    multiprocess.mark_process_dead(os.getpid())


_POOLS = DatabasePoolCollector()
if MULTIPROCESS_DIR is None:
    REGISTRY.register(_POOLS)
    _POOL_MIRROR: PoolGaugeMirror | None = None
else:
    _POOL_MIRROR = PoolGaugeMirror(_POOLS)
    # Live gauges (pools, backlog, lag) of an exited worker must not count any more.
    atexit.register(_forget_this_worker)
