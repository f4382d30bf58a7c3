"""PostgreSQL LISTEN held open for as long as the caller runs, reconnecting after restarts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from crm_libs.db import asyncpg_dsn

log = logging.getLogger(__name__)


async def listen_forever(
    database_url: str,
    channel: str,
    on_notify: Callable[[str], None],
    *,
    on_connect: Callable[[], None] | None = None,
    retry_seconds: float = 2.0,
) -> None:
    """Call ``on_notify(payload)`` for each NOTIFY on ``channel`` until cancelled.

    ``on_connect`` runs after every (re)connection: notifications sent while the connection was
    down are lost, so a caller that must not miss work looks for it then.
    """
    while True:
        try:
            await _listen_until_closed(database_url, channel, on_notify, on_connect)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "listener reconnecting", extra={"fields": {"channel": channel, "error": repr(exc)}}
            )
        await asyncio.sleep(retry_seconds)


async def _listen_until_closed(
    database_url: str,
    channel: str,
    on_notify: Callable[[str], None],
    on_connect: Callable[[], None] | None,
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        closed = asyncio.Event()
        conn.add_termination_listener(lambda *_: closed.set())
        await conn.add_listener(channel, lambda *args: on_notify(str(args[-1])))
        if on_connect is not None:
            on_connect()
        await closed.wait()
    finally:
        await conn.close()
