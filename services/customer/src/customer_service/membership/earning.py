"""Points earned by a sale, in the sale's own statement (purchases/service.py).

A sale is benchmarked against a bare insert, so earning adds no round trip: the sale's read
also brings the store's rules, the member's account and the 12-month spend (``SELLER_COLUMNS``),
and its write carries the account, the ledger's ``earn`` row and, when the sale moves the
member's level, ``customer.level_changed`` (``SALE_CTES``).

The level is decided from the spend read before the write; the write moves it only if the
account still holds another level, and stamps it with the sale's event id, so of two sales
racing across one threshold exactly one publishes. Two concurrent sales that reach a level only
together move it at the member's next change or the daily job (membership/expiry.py).
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from crm_libs.events.envelope import Topics
from crm_libs.ids import new_id
from customer_service.membership import events
from customer_service.membership.rules import Rules

# The 12 months a level is reached in: the last 365 days, here and in the SQL below.
SPEND_WINDOW = timedelta(days=365)
# The 12-month spend of a customer (by store and id, given as SQL expressions): what its
# purchases of the last 12 months cost, less what was refunded of them. A purchase moved by a
# merge counts for the file it was moved to.
_SPEND_12M = """(
    (SELECT coalesce(sum(sp.total), 0) FROM purchase sp
     WHERE sp.store_id = {store} AND sp.customer_id = {customer}
       AND sp.purchased_at > now() - interval '365 days')
    - (SELECT coalesce(sum(sr.total), 0) FROM purchase_refund sr
       JOIN purchase sp ON sp.id = sr.purchase_id
       WHERE sp.store_id = {store} AND sp.customer_id = {customer}
         AND sp.purchased_at > now() - interval '365 days')
)"""


def spend_12m_sql(*, store: str, customer: str) -> str:
    """The 12-month spend as a scalar SQL expression."""
    return _SPEND_12M.format(store=store, customer=customer)


# The write's parts, after the sale's own CTEs ($1 purchase id, $2 store, $3 customer):
# $19 points earned, $20 the new level, $21 its event id (NULL: the sale moves no level),
# $22 the ledger row's id, $23 the day its points expire, $24 crm.customers.v1, $25 the event.
_MOVES = "excluded.level_event_id IS NOT NULL AND a.level IS DISTINCT FROM excluded.level"
SALE_CTES = f"""
    , account AS (
        INSERT INTO member_account AS a
            (customer_id, store_id, points_balance, level, level_event_id, level_changed_at)
        VALUES ($3::text, $2::text, $19::bigint, $20::text, $21::text,
                CASE WHEN $21::text IS NOT NULL THEN now() END)
        ON CONFLICT (customer_id) DO UPDATE SET
            points_balance = a.points_balance + excluded.points_balance,
            previous_level = CASE WHEN {_MOVES} THEN a.level ELSE a.previous_level END,
            level_changed_at = CASE WHEN {_MOVES} THEN now() ELSE a.level_changed_at END,
            level_event_id = CASE WHEN {_MOVES} THEN excluded.level_event_id
                                  ELSE a.level_event_id END,
            level = CASE WHEN {_MOVES} THEN excluded.level ELSE a.level END
        RETURNING points_balance, level_event_id, previous_level
    ), earned AS (
        INSERT INTO points_entry
            (id, store_id, customer_id, kind, points, balance_after, reference, remaining,
             expires_on)
        SELECT $22::text, $2::text, $3::text, 'earn', $19::bigint, account.points_balance,
               $1::text, $19::bigint, $23::date
        FROM account WHERE $19::bigint > 0
    ), level_moved AS (
        INSERT INTO outbox_event (event_id, topic, key, envelope)
        SELECT $21::text, $24::text, $3::text,
               CASE WHEN account.previous_level IS NULL THEN $25::jsonb
                    ELSE jsonb_set($25::jsonb, '{{payload,from_level}}',
                                   to_jsonb(account.previous_level)) END
        FROM account WHERE account.level_event_id = $21::text
    )
"""  # noqa: S608 - constants


@dataclass(frozen=True, slots=True)
class Earning:
    """What a sale's write needs of membership: ``SALE_CTES``' parameters, in order."""

    points: int
    level: str | None
    level_event_id: str | None
    entry_id: str
    expires_on: date
    envelope: str | None

    def parameters(self) -> tuple[Any, ...]:
        return (
            self.points,
            self.level,
            self.level_event_id,
            self.entry_id,
            self.expires_on,
            Topics.CUSTOMERS,
            self.envelope,
        )


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day (31 Jan + 1 month: 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def for_sale(
    seller: Any,
    *,
    store_id: str,
    customer_id: str,
    total: Decimal,
    purchased_at: datetime,
    timezone: str,
    now: datetime,
) -> Earning:
    """Points and level for a sale, from the sale's read (``seller``: the columns below)."""
    rules = Rules.of(seller["points_per_yuan"], seller["points_expire_months"], seller["levels"])
    spend_before = seller["spend_12m"]
    spend_after = spend_before + total if purchased_at > now - SPEND_WINDOW else spend_before
    level_before = seller["level"] if seller["account_id"] is not None else None
    if level_before is None:
        level_before = rules.level_for(Decimal(0))
    level_after = rules.level_for(spend_after)
    envelope = None
    level_event_id = None
    if level_after != level_before:
        event = events.level_changed(
            store_id=store_id,
            customer_id=customer_id,
            from_level=level_before,
            to_level=level_after,
            spend_12m=spend_after,
            cause=events.PURCHASE,
        )
        level_event_id = str(event.event_id)
        envelope = event.to_bytes().decode()
    local_day = purchased_at.astimezone(ZoneInfo(timezone)).date()
    return Earning(
        points=rules.earned(total),
        level=level_after if level_event_id else None,
        level_event_id=level_event_id,
        entry_id=new_id(),
        expires_on=add_months(local_day, rules.points_expire_months),
        envelope=envelope,
    )
