"""RFM (DOMAIN.md §3): recency, frequency and money scored 1-5 by the store's quintiles, and a
named segment.

The measures: recency is the last purchase's time, frequency the purchase count, money the net
spend of the trailing window (the pyramid's measure, so money and tier agree). Each score is 1
plus how many of the store's four quintile boundaries (the 20th, 40th, 60th and 80th
percentiles among the store's buyers, ``percentile_disc``) the customer's value exceeds: equal
values always score the same, and where many customers tie (most have bought once) the
quintiles are uneven rather than splitting a tie.

The boundaries need the whole store, so they are kept per store (``rfm_bound``) and a batch
scores its customers against them; they are computed again when the store's buyers have grown
by a quarter since (amortised: a growing store is ranked whole a logarithmic number of times),
and daily or on a recompute by :func:`scores.classify.classify_store`.

A store with fewer buyers than there are quintiles (five) has no quintiles: its customers have
no RFM score yet (with percentile boundaries over one buyer, that buyer exceeds none of them and
a store's first customer, who has just bought, would read ``lost``). Once the store has five
buyers the boundaries are computed again for the next batch (every customer without a score
counts as new) and the daily ageing scores the ones classified before.

Segments: the usual recency × frequency grid (the money score is kept, not used to name it),
first match wins.
"""

RFM_QUANTILES = (0.2, 0.4, 0.6, 0.8)
# The fewest buyers a store's quintiles are computed for: one a quintile.
MIN_BUYERS = len(RFM_QUANTILES) + 1
# Boundaries are computed again once new buyers reach this share of those they came from.
REGROW_SHARE = 4  # new_buyers * REGROW_SHARE > buyers: a quarter

# (recency scores, frequency scores, segment), first match wins.
SEGMENT_RULES: tuple[tuple[tuple[int, ...], tuple[int, ...], str], ...] = (
    ((1,), (1,), "lost"),
    ((1, 2), (1, 2), "hibernating"),
    ((1, 2), (3, 4), "at_risk"),
    ((1, 2), (5,), "cannot_lose"),
    ((3,), (1, 2), "about_to_sleep"),
    ((3,), (3,), "need_attention"),
    ((3, 4), (4, 5), "loyal"),
    ((4,), (1,), "promising"),
    ((5,), (1,), "new"),
    ((4, 5), (2, 3), "potential_loyalist"),
    ((5,), (4, 5), "champions"),
)
SEGMENTS = tuple(dict.fromkeys(name for _, _, name in SEGMENT_RULES))


def segment_of(r: int, f: int) -> str:
    """The segment of a recency score ``r`` and frequency score ``f`` (1-5 each)."""
    for recency, frequency, name in SEGMENT_RULES:
        if r in recency and f in frequency:
            return name
    raise ValueError(f"no segment for r={r}, f={f}")


def _grid_sql() -> str:
    """The 25 segments as an SQL array indexed by ``(r - 1) * 5 + f``."""
    names = [segment_of(r, f) for r in range(1, 6) for f in range(1, 6)]
    return "ARRAY[" + ", ".join(f"'{n}'" for n in names) + "]"


SEGMENT_GRID_SQL = _grid_sql()


def score_sql(value: str, bounds: str) -> str:
    """SQL for 1 + how many of the four boundaries in array ``bounds`` ``value`` exceeds."""
    return "1 + " + " + ".join(
        f"CAST({value} > {bounds}[{i}] AS integer)" for i in range(1, len(RFM_QUANTILES) + 1)
    )


def cut_sql(column: str) -> str:
    """SQL for the four quintile boundaries of ``column`` in a group (an ordered-set aggregate)."""
    quantiles = ", ".join(str(q) for q in RFM_QUANTILES)
    return f"percentile_disc(ARRAY[{quantiles}]) WITHIN GROUP (ORDER BY {column})"
