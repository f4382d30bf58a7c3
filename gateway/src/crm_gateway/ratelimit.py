"""Per-account and per-key request limits (the ``limits`` library, moving window)."""

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter


class RateLimiter:
    """In-process windows: each gateway replica enforces the limit for what it serves."""

    def __init__(self, limit: str) -> None:
        self._item: RateLimitItem = parse(limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def retry_after(self, *identity: str) -> int | None:
        """None if this request may pass, otherwise seconds until it may."""
        if await self._limiter.hit(self._item, *identity):
            return None
        stats = await self._limiter.get_window_stats(self._item, *identity)
        return max(1, math.ceil(stats.reset_time - time.time()))
