"""The per-customer summary the models are fitted to, with the conventions of the literature.

Fader, Hardie and Lee (2005) and the ``lifetimes`` package summarise a customer's purchases in a
calibration period as:

- purchases on one day count once (a basket split over two tills is one purchase);
- ``frequency`` x: the number of *repeat* days (days with a purchase, less the first);
- ``recency`` t_x: the time from the first purchase day to the last one (0 with no repeat);
- ``T``: the customer's age, from the first purchase day to the end of the calibration period,
  that end day included as a day on which purchases count (CDNOW's 39 weeks run 1997-01-01 to
  1997-09-30: a first purchase on 01-01 has T = 272 days = 38.86 weeks);
- ``monetary`` m_x: the mean value of the repeat days, each day's purchases summed, the first
  day left out. That is how ``lifetimes.utils.summary_data_from_transaction_data`` builds it and
  the convention that reproduces the published Gamma-Gamma fit to the CDNOW sample (p = 6.25,
  q = 3.74, v = 15.44): the first purchase is what made the customer, and is not drawn from the
  same spending distribution as the repeat ones. Zero for customers with no repeat day.

Times are in ``time_unit`` (a week by default, as in the literature; a day allowed).
"""

from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import numpy.typing as npt

TimeUnit = Literal["week", "day"]
DAYS_PER: dict[str, int] = {"week": 7, "day": 1}

FloatArray = npt.NDArray[np.float64]


def in_units(days: npt.ArrayLike, time_unit: TimeUnit) -> FloatArray:
    """Whole days expressed in ``time_unit``."""
    return np.asarray(days, dtype=np.float64) / DAYS_PER[time_unit]


@dataclass(frozen=True)
class Summary:
    """One entry per customer, in ``time_unit``."""

    frequency: FloatArray
    recency: FloatArray
    age: FloatArray  # T
    monetary: FloatArray

    def __post_init__(self) -> None:
        sizes = {len(self.frequency), len(self.recency), len(self.age), len(self.monetary)}
        if len(sizes) != 1:
            raise ValueError("the summary's columns differ in length")

    def __len__(self) -> int:
        return len(self.frequency)

    @property
    def repeat_customers(self) -> int:
        return int(np.count_nonzero(self.frequency > 0))

    @classmethod
    def of(
        cls,
        *,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        age: npt.ArrayLike,
        monetary: npt.ArrayLike | None = None,
    ) -> "Summary":
        x = np.asarray(frequency, dtype=np.float64)
        return cls(
            frequency=x,
            recency=np.asarray(recency, dtype=np.float64),
            age=np.asarray(age, dtype=np.float64),
            monetary=np.zeros_like(x) if monetary is None else np.asarray(monetary, np.float64),
        )


def summarise(
    *,
    customers: npt.ArrayLike,
    days: npt.ArrayLike,
    amounts: npt.ArrayLike,
    calibration_end: date,
    time_unit: TimeUnit = "week",
) -> Summary:
    """The summary of transactions (customer, day, amount) up to ``calibration_end`` included.

    The same conventions as the SQL that summarises a store's purchase facts (``fits.py``), for
    transaction logs held in memory (the CDNOW files, the benchmark). Vectorised: one sort.
    A transaction is a purchase that stood: amounts net of refunds, and a sale returned in full
    left out by the caller, as the SQL leaves out wholly refunded facts.
    """
    day_numbers = np.asarray(days, dtype="datetime64[D]")
    end = np.datetime64(calibration_end, "D")
    keep = day_numbers <= end
    who = np.asarray(customers)[keep]
    when = day_numbers[keep].astype(np.int64)
    value = np.asarray(amounts, dtype=np.float64)[keep]
    if len(who) == 0:
        return Summary.of(frequency=[], recency=[], age=[])
    # One row per (customer, day): a day's purchases count once, their amounts summed.
    _, customer_index = np.unique(who, return_inverse=True)
    order = np.lexsort((when, customer_index))
    customer_index, when, value = customer_index[order], when[order], value[order]
    new_day = np.ones(len(when), dtype=bool)
    new_day[1:] = (customer_index[1:] != customer_index[:-1]) | (when[1:] != when[:-1])
    day_starts = np.flatnonzero(new_day)
    day_customer = customer_index[day_starts]
    day_number = when[day_starts]
    day_value = np.add.reduceat(value, day_starts)
    # Per customer: its first day, last day, number of days and the repeat days' total.
    first_of_customer = np.ones(len(day_customer), dtype=bool)
    first_of_customer[1:] = day_customer[1:] != day_customer[:-1]
    starts = np.flatnonzero(first_of_customer)
    ends = np.append(starts[1:], len(day_customer)) - 1
    n_days = ends - starts + 1
    repeat_value = np.add.reduceat(day_value, starts) - day_value[starts]
    frequency = (n_days - 1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, repeat_value / np.maximum(frequency, 1), 0.0)
    first, last = day_number[starts], day_number[ends]
    end_number = end.astype(np.int64)
    return Summary(
        frequency=frequency,
        recency=in_units(last - first, time_unit),
        age=in_units(end_number - first, time_unit),
        monetary=monetary,
    )
