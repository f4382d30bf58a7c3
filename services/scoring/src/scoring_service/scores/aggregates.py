"""Folding purchases into per-customer aggregates: counts, dates and the supply run-out date.

Supply carried over depends on the order purchases are folded in, so they are folded in
purchase-date order: a batch is sorted, and a purchase dated before the customer's last one
(back-dated, or delayed on another partition) makes the aggregate start again from every stored
purchase of the customer (:meth:`Aggregate.rebuild`).

A batch is folded here, outside its transaction, per customer and from nothing
(:class:`BatchAggregate`); the database adds it to the stored aggregate in one statement, with
:func:`added_runs_out` for the run-out date.
"""

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec


class PurchaseSeen(msgspec.Struct, gc=False):
    """The fields of ``purchase.recorded`` this service reads.

    Not tracked by the garbage collector (it holds no containers but tuples of text and
    numbers, which cannot form a cycle): a batch of thousands of them would otherwise set off
    collections that scan them again and again."""

    purchase_id: str
    store_id: str
    customer_id: str
    purchased_at: datetime
    purchased_on: date
    timezone: str
    total: Decimal
    supply_days: int
    # The lines, one position each (purchase_fact's line_* arrays): what was bought.
    skus: tuple[str, ...] = ()
    categories: tuple[str | None, ...] = ()
    quantities: tuple[int, ...] = ()

    @classmethod
    def from_payload(
        cls, *, store_id: str, customer_id: str, payload: dict[str, Any]
    ) -> "PurchaseSeen":
        return cls(
            purchase_id=payload["purchase_id"],
            store_id=store_id,
            customer_id=customer_id,
            purchased_at=datetime.fromisoformat(payload["purchased_at"]),
            purchased_on=date.fromisoformat(payload["purchased_on"]),
            timezone=payload["timezone"],
            total=Decimal(payload["total"]),
            supply_days=sum(
                int(line["qty"]) * int(line["days_per_unit"]) for line in payload["lines"]
            ),
            # A line without a sku counts its supply and money, and is not kept as bought.
            skus=tuple(str(line["sku"]) for line in payload["lines"] if "sku" in line),
            categories=tuple(
                _text_or_none(line.get("category")) for line in payload["lines"] if "sku" in line
            ),
            quantities=tuple(int(line["qty"]) for line in payload["lines"] if "sku" in line),
        )

    def date_order(self) -> tuple[datetime, str]:
        """The order aggregates fold purchases in (ties: by id, so every replay agrees)."""
        return self.purchased_at, self.purchase_id


def _text_or_none(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"category is {type(value).__name__}, not text")


def extend_supply(runs_out_on: date | None, *, purchased_on: date, supply_days: int) -> date:
    """Stock not yet used carries over: count from the later of purchase day and current run-out."""
    start = purchased_on if runs_out_on is None or runs_out_on < purchased_on else runs_out_on
    return start + timedelta(days=supply_days)


class Aggregate(msgspec.Struct, gc=False):
    """One customer's running totals, as stored in ``customer_score``."""

    customer_id: str
    store_id: str
    timezone: str
    purchase_count: int = 0
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    supply_runs_out_on: date | None = None

    def is_before_last(self, p: PurchaseSeen) -> bool:
        """Whether ``p`` is dated before a purchase already folded in (folding it would be
        out of date order)."""
        return self.last_purchase_at is not None and p.purchased_at < self.last_purchase_at

    def rebuild(self, purchases: Iterable[PurchaseSeen]) -> None:
        """Start again from all of the customer's purchases, given in :meth:`date_order`."""
        self.purchase_count = 0
        self.first_purchase_at = self.last_purchase_at = None
        self.supply_runs_out_on = None
        for p in purchases:
            self.fold(p)

    def fold(self, p: PurchaseSeen) -> None:
        """Count one more purchase, dated no earlier than those already folded in."""
        self.purchase_count += 1
        if self.first_purchase_at is None or p.purchased_at < self.first_purchase_at:
            self.first_purchase_at = p.purchased_at
        if self.last_purchase_at is None or p.purchased_at > self.last_purchase_at:
            self.last_purchase_at = p.purchased_at
        self.supply_runs_out_on = extend_supply(
            self.supply_runs_out_on, purchased_on=p.purchased_on, supply_days=p.supply_days
        )
        self.timezone = p.timezone


class BatchAggregate(Aggregate, gc=False):
    """A batch's purchases of one customer folded from nothing, and the days of supply they
    bought: what the batch adds to the stored aggregate."""

    supply_days: int = 0

    def fold(self, p: PurchaseSeen) -> None:
        super().fold(p)
        self.supply_days += p.supply_days


def added_runs_out(stored: date | None, batch: BatchAggregate) -> date | None:
    """The run-out date of a stored aggregate with a later batch folded in, from the batch alone.

    Folding runs ``r = max(d, r) + s`` per purchase, so after the batch ``r`` is the latest of
    the stored run-out pushed by every day bought (``stored + supply_days``) and what the batch
    gives from nothing (each of its purchases' day pushed by the supply bought from then on).
    The scoring SQL computes the same as ``GREATEST(stored + supply_days, runs_out)``."""
    if stored is None:
        return batch.supply_runs_out_on
    pushed = stored + timedelta(days=batch.supply_days)
    runs_out = batch.supply_runs_out_on
    return pushed if runs_out is None or pushed > runs_out else runs_out


def fold_batch(purchases: Iterable[PurchaseSeen]) -> dict[str, BatchAggregate]:
    """Each customer's purchases of a batch folded in date order, from nothing.

    What :meth:`BatchAggregate.fold` does purchase by purchase, written out in one loop: a
    batch of thousands is folded before its transaction, on the consumer's one core."""
    by_customer: dict[str, list[PurchaseSeen]] = {}
    for p in purchases:
        bought = by_customer.get(p.customer_id)
        if bought is None:
            by_customer[p.customer_id] = [p]
        else:
            bought.append(p)
    folded = {}
    for customer_id, bought in by_customer.items():
        if len(bought) > 1:
            bought.sort(key=PurchaseSeen.date_order)
        runs_out: date | None = None
        supply_days = 0
        for p in bought:  # extend_supply
            if runs_out is None or runs_out < p.purchased_on:
                runs_out = p.purchased_on
            runs_out += timedelta(days=p.supply_days)
            supply_days += p.supply_days
        first, last = bought[0], bought[-1]
        folded[customer_id] = BatchAggregate(
            customer_id=customer_id,
            store_id=first.store_id,
            timezone=last.timezone,
            purchase_count=len(bought),
            first_purchase_at=first.purchased_at,
            last_purchase_at=last.purchased_at,
            supply_runs_out_on=runs_out,
            supply_days=supply_days,
        )
    return folded
