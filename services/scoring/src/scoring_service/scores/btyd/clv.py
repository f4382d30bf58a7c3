"""Customer lifetime value over a horizon: BG/NBD's purchases times Gamma-Gamma's order value.

The discounted sum ``lifetimes.utils._customer_lifetime_value`` computes, in months:

    CLV = Σ_{i=1..H} (E[Y(i)] - E[Y(i-1)]) · E[M] / (1 + d)^i

with E[Y(i)] the purchases expected in the next i months (so each difference is month i's),
E[M] the expected order value and d the monthly discount rate. The one difference from
``lifetimes``: a month is 365.25/12 days rather than 30, so twelve of them are a year.
"""

import numpy as np

from scoring_service.scores.btyd import bgnbd, gamma_gamma
from scoring_service.scores.btyd.summary import DAYS_PER, FloatArray, Summary, TimeUnit

DAYS_PER_MONTH = 365.25 / 12


def lifetime_value(
    purchases: bgnbd.BgNbd,
    order_value: gamma_gamma.GammaGamma,
    summary: Summary,
    *,
    time_unit: TimeUnit,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> FloatArray:
    """Each customer's discounted value over the next ``months`` months."""
    month_ends = np.arange(0, months + 1, dtype=np.float64) * DAYS_PER_MONTH / DAYS_PER[time_unit]
    # (months + 1) x customers in one call: cumulative purchases at each month's end.
    cumulative = bgnbd.expected_purchases(purchases, summary, month_ends[:, np.newaxis])
    cumulative[0] = 0.0
    per_month = np.diff(cumulative, axis=0)
    discount = (1.0 + monthly_discount_rate) ** -np.arange(1, months + 1, dtype=np.float64)
    value = gamma_gamma.expected_order_value(order_value, summary)
    return np.asarray(discount @ per_month * value, dtype=np.float64)
