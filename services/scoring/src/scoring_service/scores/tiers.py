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


def tier_case_sql(*, first_parameter: int | None = None) -> tuple[str, dict[str, Decimal]]:
    """The SQL CASE that applies :data:`PYRAMID` to columns ``greater`` and ``spenders``.

    ``greater / spenders < bound`` as ``greater < bound * spenders``: exact, and no numeric
    division for every customer of every re-ranked store. The bounds are parameters, named
    ``:bound_N``, or positional from ``$first_parameter`` on (asyncpg; pass ``params.values()``
    in order)."""
    names = [
        f":bound_{i}" if first_parameter is None else f"${first_parameter + i}"
        for i in range(len(PYRAMID))
    ]
    branches = " ".join(
        f"WHEN greater < CAST({name} AS numeric) * spenders THEN '{tier}'"
        for name, (tier, _) in zip(names, PYRAMID, strict=True)
    )
    params = {name.lstrip(":$"): bound for name, (_, bound) in zip(names, PYRAMID, strict=True)}
    return f"CASE {branches} ELSE '{BASE_TIER}' END", params
