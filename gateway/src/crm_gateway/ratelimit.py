"""Per-account, per-key and per-address request limits: an exact moving window, in process.

The limit is written as the ``limits`` library reads it (``1200/minute``, ``30 per 2 minutes``).
Its own memory storage was about 5% of the gateway's CPU on the proxy path (locks, a thread
hop per key for expiry); a window here is a deque of the admitted requests' times.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Hashable

from limits import parse


class RateLimiter:
    """At most ``amount`` requests per identity in any ``period`` seconds.

    In-process: each gateway process enforces the limit for the requests it serves. A refused
    request does not count, so a client that waits for ``Retry-After`` gets in then.
    """

    def __init__(self, limit: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        item = parse(limit)
        self.amount: int = item.amount
        self.period: float = float(item.get_expiry())
        self._clock = clock
        self._hits: dict[Hashable, deque[float]] = {}
        self._next_sweep = clock() + self.period

    def retry_after(self, *identity: str) -> int | None:
        """None if this request may pass (and counts it), otherwise whole seconds until one
        may (at least 1, for ``Retry-After``)."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        hits = self._hits.get(identity)
        if hits is None:
            hits = self._hits[identity] = deque()
        else:
            cutoff = now - self.period
            while hits and hits[0] <= cutoff:
                hits.popleft()
        if len(hits) >= self.amount:
            return max(1, math.ceil(hits[0] + self.period - now))
        hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        """Forget identities with no request inside the window (once per period), so callers
        who came once do not stay in memory."""
        cutoff = now - self.period
        self._hits = {key: hits for key, hits in self._hits.items() if hits and hits[-1] > cutoff}
        self._next_sweep = now + self.period

    def __len__(self) -> int:
        """Identities remembered right now."""
        return len(self._hits)
