"""Points and levels for a purchase history imported from an old till (imports/purchase_import.py),
a chunk at a time in the chunk's transaction.

Each imported purchase earns what it would have earned at the counter on its own day (DOMAIN.md
§8: points are earned on purchases; the store's rules of today, the only ones known), and its
points expire on that day plus the rules' expiry months, in the store's zone, as a sale's do
(earning.py). History older than that earns points already expired: the ledger gets the ``earn``
row (its lot spent, ``remaining`` 0) and at once the ``expire`` row taking them, each naming the
purchase (``reference``) and its day (``reason``). Expiring them here rather than leaving lots
past their day to the daily job keeps the balance and the points that will expire next right the
moment the chunk commits: a lot past its day would count in the balance and show as "expiring"
until the next run, and the run for the store's today may already be done (membership/expiry.py
runs a store once a day). A refund of an imported purchase finds its ``earn`` row by the
purchase id and reverses in proportion like any refund's (ledger.py).

The level follows the 12-month spend the imported purchases make (only those within the last
365 days count, as for any purchase), settled once per customer per chunk: one
``customer.level_changed`` (cause ``import``) per customer whose level the chunk moved, not one
per row.

Set-based, like the rest of the import: one read (the members' levels and their 12-month spend,
the chunk's purchases included) and one write carrying the accounts, the ledger rows (each with
the balance after it, in order) and the level events.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from crm_libs.events.envelope import Topics
from crm_libs.ids import new_id
from customer_service.membership import events
from customer_service.membership.earning import add_months, spend_12m_sql
from customer_service.membership.ledger import rules_of
from customer_service.membership.models import EARN, EXPIRE


@dataclass(frozen=True, slots=True)
class PastSale:
    """An imported purchase, as membership needs it."""

    purchase_id: str
    customer_id: str
    total: Decimal
    purchased_at: datetime


# The chunk's members (their purchases written already): the level each holds and the 12-month
# spend now.
_MEMBERS = f"""
    SELECT c.id AS customer_id, a.level,
           {spend_12m_sql(store="$1::text", customer="c.id")} AS spend_12m
    FROM unnest($2::text[]) AS c(id) LEFT JOIN member_account a ON a.customer_id = c.id
"""  # noqa: S608 - constants
# As a sale's write moves a level (earning.py): only if the account still holds another one,
# stamped with the event that announces it, so a concurrent sale and the chunk publish once.
_MOVES = "excluded.level_event_id IS NOT NULL AND a.level IS DISTINCT FROM excluded.level"
# $1 store; per member (in id order: the rows are locked in that order): $2 id, $3 points the
# chunk adds net, $4 the new level, $5 its event id (NULL: no move), $6 the event; per ledger
# row, in the order they happen: $7 id, $8 member, $9 kind, $10 points (signed), $11 purchase,
# $12 reason, $13 remaining (lots), $14 expiry day (lots), $15 the row's place; $16 the topic.
_WRITE = f"""
    WITH member AS (
        SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
            WITH ORDINALITY AS m(customer_id, points, level, event_id, envelope, n)
    ), account AS (
        INSERT INTO member_account AS a
            (customer_id, store_id, points_balance, level, level_event_id, level_changed_at)
        SELECT customer_id, $1::text, points, level, event_id,
               CASE WHEN event_id IS NOT NULL THEN now() END
        FROM member ORDER BY n
        ON CONFLICT (customer_id) DO UPDATE SET
            points_balance = a.points_balance + excluded.points_balance,
            previous_level = CASE WHEN {_MOVES} THEN a.level ELSE a.previous_level END,
            level_changed_at = CASE WHEN {_MOVES} THEN now() ELSE a.level_changed_at END,
            level_event_id = CASE WHEN {_MOVES} THEN excluded.level_event_id
                                  ELSE a.level_event_id END,
            level = CASE WHEN {_MOVES} THEN excluded.level ELSE a.level END
        RETURNING customer_id, points_balance, level_event_id, previous_level
    ), entry AS (
        SELECT * FROM unnest($7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[],
                             $12::text[], $13::bigint[], $14::date[], $15::int[],
                             $17::bigint[])
            AS e(id, customer_id, kind, points, reference, reason, remaining, expires_on, n,
                 expired)
    ), entries AS (
        INSERT INTO points_entry
            (id, store_id, customer_id, kind, points, balance_after, reference, reason,
             remaining, expires_on, expired)
        SELECT e.id, $1::text, e.customer_id, e.kind, e.points,
               account.points_balance - m.points
                   + sum(e.points) OVER (PARTITION BY e.customer_id ORDER BY e.n),
               e.reference, e.reason, e.remaining, e.expires_on, e.expired
        FROM entry e JOIN member m USING (customer_id) JOIN account USING (customer_id)
    )
    INSERT INTO outbox_event (event_id, topic, key, envelope)
    SELECT m.event_id, $16::text, m.customer_id,
           CASE WHEN account.previous_level IS NULL THEN m.envelope::jsonb
                ELSE jsonb_set(m.envelope::jsonb, '{{payload,from_level}}',
                               to_jsonb(account.previous_level)) END
    FROM member m JOIN account USING (customer_id)
    WHERE account.level_event_id = m.event_id
"""  # noqa: S608 - constants


async def earn_for_history(
    conn: Any,
    *,
    store_id: str,
    timezone: str,
    sales: Sequence[PastSale],
    now: datetime | None = None,
) -> None:
    """Points, expiries and levels for the chunk's imported purchases (written already, in this
    transaction)."""
    if not sales:
        return
    now = now or datetime.now(UTC)
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    rules = await rules_of(conn, store_id=store_id)
    customers = sorted({s.customer_id for s in sales})
    held = {r["customer_id"]: r for r in await conn.fetch(_MEMBERS, store_id, customers)}

    # (customer, kind, points, reference, reason, remaining, expires on, expired)
    rows: list[tuple[str, str, int, str, str, int | None, date | None, int]] = []
    net = dict.fromkeys(customers, 0)
    for sale in sorted(sales, key=lambda s: (s.customer_id, s.purchased_at, s.purchase_id)):
        points = rules.earned(sale.total)
        if points <= 0:
            continue
        day = sale.purchased_at.astimezone(zone).date()
        expires_on = add_months(day, rules.points_expire_months)
        bought = f"imported purchase of {day.isoformat()}"
        if expires_on > today:
            rows.append(
                (sale.customer_id, EARN, points, sale.purchase_id, bought, points, expires_on, 0)
            )
            net[sale.customer_id] += points
            continue
        # Expired before it was imported: earned, then expired the same moment.
        rows.append(
            (sale.customer_id, EARN, points, sale.purchase_id, bought, 0, expires_on, points)
        )
        rows.append(
            (
                sale.customer_id,
                EXPIRE,
                -points,
                sale.purchase_id,
                f"expired on {expires_on.isoformat()}: {bought}",
                None,
                None,
                0,
            )
        )

    levels: list[str | None] = []
    event_ids: list[str | None] = []
    envelopes: list[str | None] = []
    base = rules.level_for(Decimal(0))
    for customer_id in customers:
        member = held[customer_id]
        before = member["level"] if member["level"] is not None else base
        after = rules.level_for(member["spend_12m"])
        if after == before:
            levels.append(None)
            event_ids.append(None)
            envelopes.append(None)
            continue
        event = events.level_changed(
            store_id=store_id,
            customer_id=customer_id,
            from_level=before,
            to_level=after,
            spend_12m=member["spend_12m"],
            cause=events.IMPORT,
        )
        levels.append(after)
        event_ids.append(str(event.event_id))
        envelopes.append(event.to_bytes().decode())

    # Ids in the order the rows happen (UUIDv7s of one millisecond are not): the ledger's pages
    # go by id, and each row's balance after is the one before it plus its points.
    ids = sorted(new_id() for _ in rows)
    await conn.execute(
        _WRITE,
        store_id,
        customers,
        [net[c] for c in customers],
        levels,
        event_ids,
        envelopes,
        ids,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        [r[5] for r in rows],
        [r[6] for r in rows],
        list(range(len(rows))),
        Topics.CUSTOMERS,
        [r[7] for r in rows],
    )
