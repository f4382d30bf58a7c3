"""The value pyramid (客户金字塔), DOMAIN §3: defined once, as data, and applied in SQL.

Among a store's customers with positive net spend in the trailing window, let
p = (how many have strictly greater spend) / (how many there are). The first tier whose bound
p is below wins; everyone else is ``small``. Equal spend gives equal rank, so an equal tier.
"""

from decimal import Decimal

PYRAMID: tuple[tuple[str, Decimal], ...] = (
    ("vip", Decimal("0.01")),
    ("major", Decimal("0.05")),
    ("medium", Decimal("0.20")),
)
BASE_TIER = "small"
INACTIVE = "inactive"  # bought before, nothing in the window
PROSPECT = "prospect"  # never bought
WINDOW_DAYS = 365


def tier_for(greater: int, count: int) -> str:
    """The tier of a customer with ``greater`` customers above them among ``count`` spenders."""
    p = Decimal(greater) / Decimal(count)
    for tier, bound in PYRAMID:
        if p < bound:
            return tier
    return BASE_TIER


def tier_case_sql() -> tuple[str, dict[str, Decimal]]:
    """The SQL CASE that applies :data:`PYRAMID` to columns ``greater`` and ``spenders``.

    ``greater / spenders < bound`` as ``greater < bound * spenders``: exact, and no numeric
    division for every customer of every re-ranked store."""
    branches = " ".join(
        f"WHEN greater < CAST(:bound_{i} AS numeric) * spenders THEN '{tier}'"
        for i, (tier, _) in enumerate(PYRAMID)
    )
    params = {f"bound_{i}": bound for i, (_, bound) in enumerate(PYRAMID)}
    return f"CASE {branches} ELSE '{BASE_TIER}' END", params
