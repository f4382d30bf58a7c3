"""What the gateway opens at start and closes at stop: database, upstream client, watcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from crm_gateway.accounts import service as accounts
from crm_gateway.audit.spool import AuditSpool
from crm_gateway.audit.spool import default_directory as default_spool_directory
from crm_gateway.auth.authenticate import Authenticator
from crm_gateway.config import Settings
from crm_gateway.principal_forwarding import PrincipalSigner
from crm_gateway.proxy import make_upstream_session
from crm_gateway.stores import StoreDirectory
from crm_libs import collector
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.metrics import serve_metrics_on_port

log = logging.getLogger(__name__)

# Held while the first administrator is looked up and created: several workers (or replicas)
# start at once, and the one that finds no account must not fail on another's new row.
_BOOTSTRAP_LOCK_SQL = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('crm.gateway.bootstrap_admin', 0))"
)


def make_lifespan(
    settings: Settings, *, upstreams: dict[str, str], signer: PrincipalSigner
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The gateway's lifespan: everything on ``app.state`` that lives as long as the process."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
        app.state.engine = engine  # read by the metrics' pool collector at scrape time
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.authenticator = Authenticator(
            settings=settings, sessionmaker=app.state.sessionmaker
        )
        app.state.audit_spool = AuditSpool(
            directory=Path(settings.audit_spool_dir)
            if settings.audit_spool_dir
            else default_spool_directory(settings.database_url),
            sessionmaker=app.state.sessionmaker,
            retry_seconds=settings.audit_spool_retry_seconds,
        )
        # Proxied requests: one pooled aiohttp session (the hot path).
        app.state.upstream = make_upstream_session(
            connect_timeout=settings.upstream_connect_timeout_seconds,
            read_timeout=settings.upstream_read_timeout_seconds,
            max_connections=settings.upstream_max_connections,
        )
        # The gateway's own few calls (readiness, API documents, store checks).
        app.state.client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.upstream_read_timeout_seconds,
                connect=settings.upstream_connect_timeout_seconds,
            )
        )
        app.state.openapi_document = None
        app.state.stores = StoreDirectory(
            client=app.state.client, customer_url=upstreams["customer"], signer=signer
        )
        await _ensure_bootstrap_admin(app, settings)
        # Not on the public port: only what can reach this one (Prometheus) sees the metrics.
        metrics_server = (
            serve_metrics_on_port(host=settings.host, port=settings.metrics_port)[0]
            if settings.metrics_port is not None
            else None
        )
        watcher = asyncio.create_task(app.state.authenticator.run())
        spooler = asyncio.create_task(app.state.audit_spool.run())
        try:
            # Before the first request: a token is checked against its account's standing.
            await app.state.authenticator.wait_loaded(timeout=30)
            collector.settle_after_start()
            yield
        finally:
            if metrics_server is not None:
                # shutdown() waits for the server thread's poll loop: not on the event loop.
                await asyncio.to_thread(metrics_server.shutdown)
                metrics_server.server_close()
            for task in (watcher, spooler):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await app.state.client.aclose()
            await app.state.upstream.close()
            await engine.dispose()

    return lifespan


async def _ensure_bootstrap_admin(app: FastAPI, settings: Settings) -> None:
    if not settings.bootstrap_admin_password:
        return
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(_BOOTSTRAP_LOCK_SQL)
        created = await accounts.ensure_bootstrap_admin(
            session,
            username=settings.bootstrap_admin_user,
            password=settings.bootstrap_admin_password,
        )
    if created:
        log.warning(
            "bootstrap administrator created",
            extra={"fields": {"username": settings.bootstrap_admin_user}},
        )
