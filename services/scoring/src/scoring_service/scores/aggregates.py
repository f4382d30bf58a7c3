"""Folding purchases into per-customer aggregates: counts, dates and the supply run-out date.

Supply carried over depends on the order purchases are folded in, so they are folded in
purchase-date order: a batch is sorted, and a purchase dated before the customer's last one
(back-dated, or delayed on another partition) makes the aggregate start again from every stored
purchase of the customer (:meth:`Aggregate.rebuild`).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any


@dataclass
class PurchaseSeen:
    """The fields of ``purchase.recorded`` this service reads."""

    purchase_id: str
    store_id: str
    customer_id: str
    purchased_at: datetime
    purchased_on: date
    timezone: str
    total: Decimal
    supply_days: int

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
        )

    def date_order(self) -> tuple[datetime, str]:
        """The order aggregates fold purchases in (ties: by id, so every replay agrees)."""
        return self.purchased_at, self.purchase_id


def extend_supply(runs_out_on: date | None, *, purchased_on: date, supply_days: int) -> date:
    """Stock not yet used carries over: count from the later of purchase day and current run-out."""
    start = purchased_on if runs_out_on is None or runs_out_on < purchased_on else runs_out_on
    return start + timedelta(days=supply_days)


@dataclass
class Aggregate:
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
