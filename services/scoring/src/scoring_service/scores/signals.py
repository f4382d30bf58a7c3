"""What the ladder and loyalty read besides purchases, stored as the consumer meets it.

- Member-event signals (``crm.engagement.v1``): ``event.attended`` and ``event.guest_brought``,
  one row per kind, member event and customer, so a replay or a second report adds nothing.
  A signal for a merged-away file is the survivor's.
- File links (``crm.customers.v1``): each file's referrer and whether it records competitors'
  products in use, taken from ``payload.file`` only when its version is newer than the one held.

Each returns who must be classified again and why: the signal's customer; a file whose link
changed, and its referrers before and after (a referred buyer more or fewer).
"""

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from scoring_service.scores import history

ATTENDED = "attended"
GUEST_BROUGHT = "guest_brought"
_CAUSE_OF_KIND = {ATTENDED: history.EVENT_ATTENDED, GUEST_BROUGHT: history.GUEST_BROUGHT}

# (kind, member event id, customer_id, store_id, occurred_at)
Signal = tuple[str, str, str, str, datetime]
# (customer_id, store_id, referrer_id, uses_competitor, file version)
Link = tuple[str, str, str | None, bool, int]

_INSERT_SIGNALS_SQL = """
    INSERT INTO customer_signal (kind, source_id, customer_id, store_id, occurred_at)
    SELECT s.kind, s.source_id, COALESCE(m.survivor_id, s.customer_id), s.store_id,
           s.occurred_at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
         AS s(kind, source_id, customer_id, store_id, occurred_at)
    LEFT JOIN merged_customer AS m ON m.customer_id = s.customer_id
    ON CONFLICT DO NOTHING
    RETURNING kind, customer_id
"""

# The newest version of each file wins; returns the files whose link changed, with the
# referrer they had before (read from the statement's snapshot, before the upsert). A first
# link with no referrer and no competitors' products changes no classification (no link reads
# the same): an imported sheet's plain registrations classify nobody.
_UPSERT_LINKS_SQL = """
    WITH given AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::integer[])
            AS g(customer_id, store_id, referrer_id, uses_competitor, version)
    ), before AS (
        SELECT l.customer_id, l.referrer_id, l.uses_competitor FROM customer_link AS l
        WHERE l.customer_id IN (SELECT customer_id FROM given)
    ), written AS (
        INSERT INTO customer_link (customer_id, store_id, referrer_id, uses_competitor, version)
        SELECT * FROM given
        ON CONFLICT (customer_id) DO UPDATE SET
            store_id = excluded.store_id, referrer_id = excluded.referrer_id,
            uses_competitor = excluded.uses_competitor, version = excluded.version
        WHERE customer_link.version < excluded.version
        RETURNING customer_id, referrer_id, uses_competitor
    )
    SELECT w.customer_id, w.referrer_id, b.referrer_id AS previous_referrer_id
    FROM written AS w LEFT JOIN before AS b USING (customer_id)
    WHERE w.referrer_id IS DISTINCT FROM b.referrer_id
       OR w.uses_competitor IS DISTINCT FROM COALESCE(b.uses_competitor, false)
"""

# A merge's signals follow the survivor (one per kind and event: the survivor's own wins).
_MOVE_SIGNALS_SQL = """
    WITH m AS (
        SELECT * FROM unnest($1::text[], $2::text[]) AS m(customer_id, survivor_id)
    ), moved AS (
        DELETE FROM customer_signal AS s USING m
        WHERE s.customer_id = m.customer_id
        RETURNING s.kind, s.source_id, m.survivor_id, s.store_id, s.occurred_at
    )
    INSERT INTO customer_signal (kind, source_id, customer_id, store_id, occurred_at)
    SELECT * FROM moved
    ON CONFLICT DO NOTHING
"""


async def store_signals(db: asyncpg.Connection, signals: Sequence[Signal]) -> dict[str, str]:
    """Store new signals; returns each customer with a new one and its cause."""
    if not signals:
        return {}
    rows = await db.fetch(
        _INSERT_SIGNALS_SQL,
        [s[0] for s in signals],
        [s[1] for s in signals],
        [s[2] for s in signals],
        [s[3] for s in signals],
        [s[4] for s in signals],
    )
    return {r["customer_id"]: _CAUSE_OF_KIND[r["kind"]] for r in rows}


async def store_links(db: asyncpg.Connection, links: Sequence[Link]) -> dict[str, str]:
    """Apply the files' links where newer; returns the customers to classify again and why."""
    newest: dict[str, Link] = {}
    for link in links:
        held = newest.get(link[0])
        if held is None or link[4] > held[4]:
            newest[link[0]] = link
    if not newest:
        return {}
    given = list(newest.values())
    rows = await db.fetch(
        _UPSERT_LINKS_SQL,
        [g[0] for g in given],
        [g[1] for g in given],
        [g[2] for g in given],
        [g[3] for g in given],
        [g[4] for g in given],
    )
    touched: dict[str, str] = {}
    for r in rows:
        for referrer in (r["previous_referrer_id"], r["referrer_id"]):
            if referrer is not None:
                touched[referrer] = history.REFERRAL
        touched.setdefault(r["customer_id"], history.FILE_CHANGED)
    return touched


async def move_signals(db: asyncpg.Connection, merges: Sequence[tuple[str, str]]) -> None:
    """The merged-away files' signals become their survivors' ((customer_id, survivor_id))."""
    if merges:
        await db.execute(_MOVE_SIGNALS_SQL, [c for c, _ in merges], [s for _, s in merges])
