"""The CDNOW purchase log as ``purchase.recorded`` events, and the tiers and lifecycles it should
produce.

Mapping (the same in every benchmark that replays CDNOW):
- CDNOW customer ``00042`` -> customer file ``cdnow-42`` in store ``cdnow-store-{42 % 10}``
  (ten stores, by customer id modulo 10, so each store ranks about 2,357 customers);
- one row -> one purchase ``cdnow-p{row}`` (row = 1-based line number after the header), dated
  the row's day at 00:00 UTC, time zone ``UTC``;
- one CD -> one unit of sku ``CD`` (category ``music``, 30 days per unit); the line's amount and
  the purchase total are the row's dollar value, unit price = dollars / CDs rounded to cents.
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from crm_libs.events.envelope import EventEnvelope

REPO_ROOT = Path(__file__).resolve().parent.parent
CDNOW_MASTER = REPO_ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
STORES = 10
SKU = "CD"
CATEGORY = "music"
DAYS_PER_UNIT = 30
TIMEZONE = "UTC"
PURCHASE_RECORDED = "purchase.recorded"
WINDOW_DAYS = 365  # DOMAIN.md §3: trailing 365 days
LOST_AFTER_DAYS = 730  # DOMAIN.md §3: no purchase for 730 days -> lost
STOPPED_AFTER_DAYS = 30  # DOMAIN.md §3: in service while supply ran out at most 30 days ago
CENT = Decimal("0.01")
_EVENT_NAMESPACE = uuid.UUID("6f1c7a52-4d55-4b0e-9a31-0c2d3b7e5a10")


@dataclass(frozen=True)
class CdnowRow:
    row: int  # 1-based, after the header
    cdnow_id: int
    day: date
    cds: int
    dollars: Decimal

    @property
    def customer_id(self) -> str:
        return f"cdnow-{self.cdnow_id}"

    @property
    def store_id(self) -> str:
        return f"cdnow-store-{self.cdnow_id % STORES}"

    @property
    def purchase_id(self) -> str:
        return f"cdnow-p{self.row}"

    @property
    def purchased_at(self) -> datetime:
        return datetime.combine(self.day, time.min, tzinfo=UTC)


def load(path: Path = CDNOW_MASTER, limit: int | None = None) -> list[CdnowRow]:
    """Rows of ``CDNOW_master.txt`` in file order (its first line is a header, checked here)."""
    rows: list[CdnowRow] = []
    with path.open(encoding="ascii") as handle:
        for number, line in enumerate(handle):
            fields = line.split()
            if not fields:
                continue
            if number == 0 and not fields[0].isdigit():
                continue  # header: customer_id date number_of_cds dollar_value
            if limit is not None and len(rows) >= limit:
                break
            cid, day, cds, dollars = fields
            rows.append(
                CdnowRow(
                    row=len(rows) + 1,
                    cdnow_id=int(cid),
                    day=datetime.strptime(day, "%Y%m%d").date(),
                    cds=int(cds),
                    dollars=Decimal(dollars).quantize(CENT),
                )
            )
    return rows


def envelope(row: CdnowRow) -> EventEnvelope:
    """The ``purchase.recorded`` event the customer service would publish for this row."""
    unit_price = (row.dollars / row.cds).quantize(CENT, rounding=ROUND_HALF_UP)
    return EventEnvelope(
        event_id=uuid.uuid5(_EVENT_NAMESPACE, row.purchase_id),
        type=PURCHASE_RECORDED,
        occurred_at=row.purchased_at,
        store_id=row.store_id,
        customer_id=row.customer_id,
        payload={
            "purchase_id": row.purchase_id,
            "purchased_at": row.purchased_at.isoformat(),
            "purchased_on": row.day.isoformat(),
            "timezone": TIMEZONE,
            "staff_id": None,
            "member_event_id": None,
            "total": f"{row.dollars:.2f}",
            "lines": [
                {
                    "sku": SKU,
                    "category": CATEGORY,
                    "qty": row.cds,
                    "unit_price": f"{unit_price:.2f}",
                    "amount": f"{row.dollars:.2f}",
                    "days_per_unit": DAYS_PER_UNIT,
                }
            ],
        },
    )


def window_since(as_of: date) -> datetime:
    """Start of the trailing window, exclusive: as in scoring's ``window_start``, "now" is the
    last instant of ``as_of`` (23:59:59.999999 UTC) and the window is ``purchased_at > now - 365d``.
    Computed here independently, so the comparison checks the service rather than echoing it."""
    return datetime.combine(as_of, time.max, tzinfo=UTC) - timedelta(days=WINDOW_DAYS)


def tier_for(greater: int, spenders: int) -> str:
    """DOMAIN.md §3 with exact integer arithmetic: p = greater / spenders."""
    if greater * 100 < spenders:  # p < 0.01
        return "vip"
    if greater * 20 < spenders:  # p < 0.05
        return "major"
    if greater * 5 < spenders:  # p < 0.20
        return "medium"
    return "small"


def expected_tiers(rows: list[CdnowRow], as_of: date) -> dict[str, tuple[str, str]]:
    """customer_id -> (store_id, tier) that the value pyramid gives as of ``as_of``."""
    since = window_since(as_of)
    spend: dict[str, Decimal] = defaultdict(Decimal)
    store_of: dict[str, str] = {}
    for r in rows:
        store_of[r.customer_id] = r.store_id
        if r.purchased_at > since:  # no upper bound, exactly like the service's SQL
            spend[r.customer_id] += r.dollars
    by_store: dict[str, list[Decimal]] = defaultdict(list)
    for customer, amount in spend.items():
        if amount > 0:
            by_store[store_of[customer]].append(amount)
    ascending = {store: sorted(values) for store, values in by_store.items()}
    out: dict[str, tuple[str, str]] = {}
    for customer, store in store_of.items():
        amount = spend.get(customer, Decimal(0))
        if amount <= 0:
            out[customer] = (store, "inactive")
            continue
        values = ascending[store]
        greater = len(values) - bisect_right(values, amount)
        out[customer] = (store, tier_for(greater, len(values)))
    return out


def lifecycle_for(*, today: date, first: date, last: date, runs_out: date) -> str:
    """DOMAIN.md §3's yearly lifecycle of a customer who bought, in its order of precedence;
    days are the store's (UTC for CDNOW). CDNOW has no member events, so never ``active_core``."""
    if (today - last).days >= LOST_AFTER_DAYS:  # 730 days have passed with no purchase
        return "lost"
    if (today - runs_out).days > STOPPED_AFTER_DAYS:
        return "stopped"
    if first.year == today.year:
        return "new_this_year"
    if last.year == today.year:
        return "active_second_line"  # bought this year and before, no event this year
    return "in_service_not_bought"


def expected_lifecycles(rows: list[CdnowRow], as_of: date) -> dict[str, tuple[str, str]]:
    """customer_id -> (store_id, lifecycle) as of ``as_of`` ("now" its last instant in UTC, so
    "today" is ``as_of`` itself), from the raw rows alone.

    The supply run-out is DOMAIN.md §2's fold over the purchases in date order: each one extends
    it by CDs x 30 days, counted from the later of its day and the run-out so far."""
    store_of: dict[str, str] = {}
    days: dict[str, list[tuple[date, int]]] = defaultdict(list)
    for r in rows:
        store_of[r.customer_id] = r.store_id
        days[r.customer_id].append((r.day, r.cds))
    out: dict[str, tuple[str, str]] = {}
    for customer, bought in days.items():
        bought.sort()
        runs_out: date | None = None
        for day, cds in bought:
            start = day if runs_out is None or day > runs_out else runs_out
            runs_out = start + timedelta(days=cds * DAYS_PER_UNIT)
        assert runs_out is not None
        lifecycle = lifecycle_for(
            today=as_of, first=bought[0][0], last=bought[-1][0], runs_out=runs_out
        )
        out[customer] = (store_of[customer], lifecycle)
    return out


def distribution(classes: dict[str, tuple[str, str]]) -> Counter[str]:
    return Counter(value for _, value in classes.values())
