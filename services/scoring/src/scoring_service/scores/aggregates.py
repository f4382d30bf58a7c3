"""Folding purchases into per-customer aggregates: counts, dates and the supply run-out date."""

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

    def fold(self, p: PurchaseSeen) -> None:
        """Count one more purchase (events of one customer arrive in order)."""
        self.purchase_count += 1
        if self.first_purchase_at is None or p.purchased_at < self.first_purchase_at:
            self.first_purchase_at = p.purchased_at
        if self.last_purchase_at is None or p.purchased_at > self.last_purchase_at:
            self.last_purchase_at = p.purchased_at
        self.supply_runs_out_on = extend_supply(
            self.supply_runs_out_on, purchased_on=p.purchased_on, supply_days=p.supply_days
        )
        self.timezone = p.timezone
