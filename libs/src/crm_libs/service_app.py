"""The common frame of a service: settings, engine, problem handlers, request IDs, workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import text

from crm_libs import collector
from crm_libs.db import (
    connection_turns,
    make_engine,
    make_read_sessionmaker,
    make_sessionmaker,
)
from crm_libs.logs import configure_logging
from crm_libs.metrics import instrument_app
from crm_libs.problems import install_problem_handlers
from crm_libs.request_id import RequestIdMiddleware
from crm_libs.settings import BaseServiceSettings

log = logging.getLogger(__name__)

# A worker gets the app (engine, settings on app.state) and runs until cancelled.
Worker = Callable[[FastAPI], Coroutine[Any, Any, None]]


def create_service_app(
    *,
    title: str,
    settings: BaseServiceSettings,
    routers: Sequence[APIRouter],
    workers: Sequence[Worker] = (),
) -> FastAPI:
    """Build a service's FastAPI app; background workers (relay, consumers) share its lifespan."""
    configure_logging(settings.service_name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.read_sessionmaker = make_read_sessionmaker(engine)
        app.state.connection_turns = connection_turns(settings.database_pool_size)
        app.state.stopping = asyncio.Event()
        tasks = [asyncio.create_task(_supervise(worker, app)) for worker in workers]
        log.info("service started", extra={"fields": {"port": settings.port}})
        collector.settle_after_start()
        try:
            yield
        finally:
            await _stop_workers(app, list(zip(workers, tasks, strict=True)))
            await engine.dispose()

    app = FastAPI(
        title=title,
        version="1.0.0",
        lifespan=lifespan,
        # Nothing here exports OpenTelemetry (metrics are Prometheus'): without this FastAPI
        # asks the OpenTelemetry providers on every request whether they were configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    # The service's own routes ahead of the health checks and /metrics: tried first.
    for router in routers:
        app.include_router(router)
    install_problem_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    # Outermost, so its latency covers everything else; /metrics is on the service's own port.
    instrument_app(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> dict[str, str]:
        async with app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"status": "ready"}

    return app


# How long a worker that watches ``app.state.stopping`` may take to finish what it holds, per
# phase (relay, then consumers): both phases fit in the 10 s Docker and Kubernetes give a process.
WORKER_STOP_GRACE_SECONDS = 3.0


async def _stop_workers(app: FastAPI, running: list[tuple[Worker, asyncio.Task[None]]]) -> None:
    """Stop the workers marked ``stops_first`` (the outbox relay) before the others.

    ``app.state.stopping`` is set first: a worker marked ``drains_on_stop`` finishes what it
    holds (the relay its batch, a consumer its batch and offset commit) and returns by itself
    within the grace period; anything still running then, and every other worker, is cancelled.
    """
    app.state.stopping.set()
    first = [(w, t) for w, t in running if getattr(w, "stops_first", False)]
    rest = [(w, t) for w, t in running if not getattr(w, "stops_first", False)]
    for phase in (first, rest):
        draining = [t for w, t in phase if getattr(w, "drains_on_stop", False)]
        if draining:
            await asyncio.wait(draining, timeout=WORKER_STOP_GRACE_SECONDS)
        for _, task in phase:
            task.cancel()
        for _, task in phase:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _supervise(worker: Worker, app: FastAPI) -> None:
    """Keep a worker alive: log and restart it if it ever fails, stop when cancelled."""
    while True:
        try:
            await worker(app)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "worker failed, restarting", extra={"fields": {"worker": worker.__name__}}
            )
            await asyncio.sleep(1)
