"""Where files come from and what they turn into (DOMAIN.md §1 "Prospects": conversion and cost
per converted customer are measured per source).

The files of a period are those opened in it (in the store's time zone); a file is converted once
it has a first purchase, whenever that came: a lecture's files are judged by every sale they led
to, not only those of the same weeks. A merged-away file is left out (its purchases moved to the
survivor, which is counted under its own source).
"""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.principal import Principal
from crm_libs.problems import InvalidField
from customer_service.money import to_cents
from customer_service.stores import service as stores

_BY_CHANNEL = text(
    """
    WITH files AS (
        SELECT c.source->>'channel' AS channel,
               COALESCE((c.source->>'cost')::numeric, 0) AS cost,
               EXISTS (
                   SELECT 1 FROM purchase p
                   WHERE p.store_id = c.store_id AND p.customer_id = c.id
               ) AS converted
        FROM customer c
        WHERE c.store_id = :store_id
          AND c.status <> 'merged'
          AND c.created_at >= :since AND c.created_at < :until
    )
    SELECT channel, count(*) AS files, count(*) FILTER (WHERE converted) AS converted,
           sum(cost) AS cost
    FROM files
    GROUP BY channel
    ORDER BY count(*) DESC, channel NULLS LAST
    """
)

# Whether the store has data before :since (the end of the period's first month), and if it
# has none there, the day its data begins (its first file or purchase; None when it has none at
# all). The EXISTS probes stop at the first row; the minimum is read only for a period that
# begins too early.
_FIRST_DATA = text(
    """
    SELECT CASE
        WHEN EXISTS (SELECT FROM customer WHERE store_id = :store_id AND created_at < :since)
          OR EXISTS (SELECT FROM purchase WHERE store_id = :store_id AND purchased_at < :since)
        THEN NULL
        ELSE LEAST((SELECT min(created_at) FROM customer WHERE store_id = :store_id),
                   (SELECT min(purchased_at) FROM purchase WHERE store_id = :store_id))
    END
    """
)

# Before any store opened, and after any file: how far an open end of the window reaches.
_EARLIEST = date(1900, 1, 1)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


async def by_channel(
    session: AsyncSession,
    *,
    principal: Principal,
    store_id: str,
    since: date | None,
    until: date | None,
) -> list[dict[str, Any]]:
    """Per channel (None: the files that name no source): files opened from ``since`` to
    ``until`` (both included), how many converted, their acquisition cost and its share per
    converted customer. 422 naming the field when the period is reversed, ``until`` is after
    the store's today or ``since`` before the month of its first file or purchase (as scoring's
    analysis tables, analysis/periods.py there: a manager asks for whole months)."""
    store = await stores.get(session, principal=principal, store_id=store_id)
    if since is not None and until is not None and since > until:
        raise InvalidField("from", "is after to")
    zone = ZoneInfo(store.timezone)
    today = datetime.now(zone).date()
    if until is not None and until > today:
        raise InvalidField("to", f"{until} is after the store's today ({today}): no data yet")
    start = datetime.combine(since or _EARLIEST, time(), zone)
    if since is not None:
        # A period from before the month of the store's first data is refused (a store with
        # none: empty): data before the end of ``since``'s month is enough.
        next_month = datetime.combine(
            (since.replace(day=1) + timedelta(days=31)).replace(day=1), time(), zone
        )
        first = await session.scalar(_FIRST_DATA, {"store_id": store.id, "since": next_month})
        if first is not None:
            first_day = first.astimezone(zone).date()
            raise InvalidField(
                "from",
                f"{since} is before the month of the store's first data: its data begins on "
                f"{first_day}, a period on {first_day.replace(day=1)} at the earliest",
            )
    # The end of ``until`` in the store: the next day's midnight there.
    end = datetime.combine(until + timedelta(days=1), time(), zone) if until else _LATEST
    rows = await session.execute(_BY_CHANNEL, {"store_id": store.id, "since": start, "until": end})
    out = []
    for row in rows:
        cost = to_cents(Decimal(row.cost))
        out.append(
            {
                "channel": row.channel,
                "files": row.files,
                "converted": row.converted,
                "conversion_rate": round(row.converted / row.files, 4),
                "cost": cost,
                "cost_per_converted": to_cents(cost / row.converted) if row.converted else None,
            }
        )
    return out
