"""The numbers of DOMAIN.md §3's ladder, loyalty and lifecycle, defined once.

Every classification statement (scores/classify.py, scores/rfm.py) takes them as parameters from
a :class:`Thresholds`, never as literals, so a store's own rules can replace the defaults.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Thresholds:
    # Lifecycle: no purchase for this many days (store-local days) → ``lost``.
    lost_after_days: int = 730
    # Lifecycle: supply ran out more than this many days ago → ``stopped`` (not "in service").
    stopped_after_days: int = 30
    # Ladder D: a member event attended within this many months.
    event_window_months: int = 12
    # Ladder A: this many referred buyers whose first purchase fell within the window.
    iron_core_referred_buyers: int = 3
    iron_core_window_months: int = 12
    # Loyalty: this many repeat purchases (every purchase but the customer's first) in the window.
    loyal_repeat_purchases: int = 3
    loyal_window_months: int = 24


DEFAULT_THRESHOLDS = Thresholds()
