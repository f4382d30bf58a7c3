"""The gateway's request limits: an exact moving window per account, key or address."""

from crm_gateway.ratelimit import RateLimiter


class Clock:
    """A clock the test moves by hand, so no test waits for a real minute."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_moves_with_the_oldest_request() -> None:
    clock = Clock()
    limiter = RateLimiter("3/minute", clock=clock)
    for offset in (0.0, 20.0, 40.0):
        clock.now = 1000.0 + offset
        assert limiter.retry_after("account") is None
    clock.now = 1050.0
    # The oldest of the three leaves the window at 1060: ten seconds from now.
    assert limiter.retry_after("account") == 10
    clock.now = 1060.0
    assert limiter.retry_after("account") is None  # one has left, one more gets in
    assert limiter.retry_after("account") == 20  # the next to leave came at 1020


def test_refused_requests_do_not_count() -> None:
    clock = Clock()
    limiter = RateLimiter("2/second", clock=clock)
    assert [limiter.retry_after("key") for _ in range(2)] == [None, None]
    for _ in range(100):  # a client hammering through its 429s
        assert limiter.retry_after("key") == 1
    clock.now += 1.0
    assert limiter.retry_after("key") is None


def test_identities_are_counted_apart_and_idle_ones_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter("1/minute", clock=clock)
    assert limiter.retry_after("sign-in", "10.0.0.1") is None
    assert limiter.retry_after("sign-in", "10.0.0.2") is None
    assert limiter.retry_after("sign-in", "10.0.0.1") is not None
    assert len(limiter) == 2
    clock.now += 61.0
    assert limiter.retry_after("sign-in", "10.0.0.3") is None
    assert len(limiter) == 1  # the two callers of a minute ago are not kept in memory


def test_limits_are_written_as_before() -> None:
    assert (RateLimiter("1200/minute").amount, RateLimiter("1200/minute").period) == (1200, 60)
    assert RateLimiter("30 per 2 minutes").period == 120
