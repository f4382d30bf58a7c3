"""The value pyramid (客户金字塔), DOMAIN §3: defined once, as data, and applied in SQL.

Among a store's customers with positive net spend in the trailing window, let
p = (how many have strictly greater spend) / (how many there are). The first tier whose bound
p is below wins; everyone else is ``small``. Equal spend gives equal rank, so an equal tier.

The same rule as thresholds on spend, which is how a batch is ranked without ranking its whole
store (scores/service.py): with the store's N spenders' spends in descending order
v_1 >= v_2 >= ... >= v_N and a bound b, "p < b" holds exactly for the spends of at least
v_k, k = ceil(b * N) (:func:`threshold_place`): the customers above such a spend are among
v_1 .. v_(k-1), and a spend below v_k has v_1 .. v_k above it. Ties fall on the same side.

A store's bounds are its own where it set them (``store_tier_rules``, scores/tier_rules.py),
else the defaults: the statements get the defaults as arrays, one element per store
(:func:`bounds_parameters`), and :func:`bounds_sql` takes the store's own in their place, in the
statement itself (no round trip per batch to read them, and a batch locked after a change of
rules reads the new ones).
"""

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

# Each tier's bound and its column in store_tier_rules.
PYRAMID: tuple[tuple[str, Decimal], ...] = (
    ("vip", Decimal("0.01")),
    ("major", Decimal("0.05")),
    ("medium", Decimal("0.20")),
)
TIERS = tuple(tier for tier, _ in PYRAMID)  # ranked tiers above the base, best first
RULE_COLUMNS = tuple(f"{tier}_share" for tier in TIERS)  # store_tier_rules' bounds
DEFAULT_BOUNDS = tuple(bound for _, bound in PYRAMID)
BASE_TIER = "small"
INACTIVE = "inactive"  # bought before, nothing in the window
PROSPECT = "prospect"  # never bought
WINDOW_DAYS = 365

# A store's bounds, one per tier of TIERS, in that order.
Bounds = tuple[Decimal, ...]


def window_start(as_of: date | None) -> tuple[datetime, datetime]:
    """(now, start of the trailing window); ``as_of`` pins "now" for historical replays."""
    now = datetime.now(UTC) if as_of is None else datetime.combine(as_of, time.max, tzinfo=UTC)
    return now, now - timedelta(days=WINDOW_DAYS)


def bounds_for(stores: Iterable[str]) -> dict[str, Bounds]:
    """Each store's default pyramid bounds (its own replace them in :func:`bounds_sql`)."""
    return dict.fromkeys(stores, DEFAULT_BOUNDS)


def tier_for(greater: int, count: int, bounds: Bounds = DEFAULT_BOUNDS) -> str:
    """The tier of a customer with ``greater`` customers above them among ``count`` spenders."""
    p = Decimal(greater) / Decimal(count)
    for tier, bound in zip(TIERS, bounds, strict=True):
        if p < bound:
            return tier
    return BASE_TIER


def threshold_place(bound: Decimal, spenders: int) -> int | None:
    """The place (1-based, in descending spend) of a bound's threshold among ``spenders``:
    a spender is in the bound's tier or above iff their spend is at least the spend there.
    None when no spender is (no spenders, or a bound of 0); the last place when all are."""
    place = min(math.ceil(bound * spenders), spenders)
    return place if place >= 1 else None


def bounds_parameters(stores: Sequence[str]) -> list[list[object]]:
    """The array parameters :func:`bounds_sql` reads: the stores, then each bound's values."""
    bounds = bounds_for(stores)
    columns: list[list[object]] = [list(stores)]
    columns.extend([bounds[s][i] for s in stores] for i in range(len(TIERS)))
    return columns


def bounds_sql(first_parameter: int) -> str:
    """A FROM item of one row per store with its bounds, ``store_id, bound_1 .. bound_n``, from
    the arrays of :func:`bounds_parameters` as parameters ``$first_parameter`` on, each
    replaced by the store's own rule where it has one."""
    arrays = ", ".join(
        [f"${first_parameter}::text[]"]
        + [f"${first_parameter + 1 + i}::numeric[]" for i in range(len(TIERS))]
    )
    columns = ", ".join(["store_id"] + [f"bound_{i + 1}" for i in range(len(TIERS))])
    chosen = ", ".join(
        f"COALESCE(r.{column}, d.bound_{i + 1}) AS bound_{i + 1}"
        for i, column in enumerate(RULE_COLUMNS)
    )
    # Only constants are interpolated: column names and parameter numbers.
    return (
        f"(SELECT d.store_id, {chosen} FROM unnest({arrays}) AS d({columns})"  # noqa: S608
        " LEFT JOIN store_tier_rules AS r ON r.store_id = d.store_id) AS sb"
    )


def rank_case_sql(*, greater: str, spenders: str, bounds: str) -> str:
    """The CASE giving a positive spender's tier from their rank: ``greater`` customers above
    them among ``spenders``, against the bounds ``<bounds>.bound_1 ..`` (SQL, constants of the
    caller's). ``greater / spenders < bound`` as ``greater < bound * spenders``: exact, and no
    numeric division per customer."""
    branches = " ".join(
        f"WHEN {greater} < {bounds}.bound_{i + 1} * {spenders} THEN '{tier}'"
        for i, tier in enumerate(TIERS)
    )
    return f"CASE {branches} ELSE '{BASE_TIER}' END"


def threshold_case_sql(*, spend: str, thresholds: str) -> str:
    """The CASE giving a customer's tier from their spend and the store's thresholds (an array
    in the order of TIERS, NULL where no spend qualifies): inactive without positive spend."""
    branches = " ".join(
        f"WHEN {spend} >= {thresholds}[{i + 1}] THEN '{tier}'" for i, tier in enumerate(TIERS)
    )
    return f"CASE WHEN {spend} <= 0 THEN '{INACTIVE}' {branches} ELSE '{BASE_TIER}' END"
