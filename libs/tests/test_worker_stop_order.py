"""A service stops its outbox relay first, letting it finish its batch, then the other workers."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from crm_libs.service_app import create_service_app
from crm_libs.settings import BaseServiceSettings


async def test_the_relay_finishes_its_batch_before_the_consumers_are_stopped() -> None:
    events: list[str] = []

    async def consumer(app: FastAPI) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            events.append("consumer cancelled")
            raise

    async def relay(app: FastAPI) -> None:
        await app.state.stopping.wait()
        await asyncio.sleep(0.2)  # the batch in hand: sent, acknowledged, marked sent
        events.append("relay finished its batch")

    relay.stops_first = True  # type: ignore[attr-defined]
    relay.drains_on_stop = True  # type: ignore[attr-defined]

    app = create_service_app(
        title="t", settings=BaseServiceSettings(), routers=[], workers=[consumer, relay]
    )
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.1)
    assert events == ["relay finished its batch", "consumer cancelled"]
