"""Who a campaign goes to, scanned in customer-id order a chunk at a time (the send job commits
its cursor with each chunk's messages, so a restart goes on where it stopped).

- birthday: the store's active files whose birthday, solar or lunar (care/special_days.py's
  conventions: a lunar birthday on this year's solar date of its lunar month and day, a 29
  February on the 28th in common years), falls between ``date_from`` and ``date_to``;
- festival, season: every active file of the store;
- miss_you: the active files seen at least once and not since ``unseen_days`` days: the later
  of the last purchase's day (``customer_seen``) and the last visit's (store-local) day is on or
  before today − ``unseen_days``. Someone never seen is not missed: no purchase, no visit;
- manual: the members of scoring's segment that engagement holds as active files of the store.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from engagement_service.campaigns.kinds import Kind
from engagement_service.campaigns.models import Campaign
from engagement_service.care.special_days import Occasion, PersonalDates, personal_occasions

_FILES = text(
    """
    SELECT customer_id, birthday, birthday_calendar FROM customer_file
    WHERE store_id = :store_id AND status = 'active' AND customer_id > :after
      AND (NOT :birthdays OR birthday IS NOT NULL)
    ORDER BY customer_id LIMIT :limit
    """
)
_SEEN = text(
    """
    SELECT f.customer_id, f.timezone, s.last_purchase_on, v.last_visit_at
    FROM customer_file AS f
    LEFT JOIN customer_seen AS s ON s.customer_id = f.customer_id
    LEFT JOIN LATERAL (
        SELECT max(occurred_at) AS last_visit_at FROM visit
        WHERE visit.store_id = f.store_id AND visit.customer_id = f.customer_id
    ) AS v ON true
    WHERE f.store_id = :store_id AND f.status = 'active' AND f.customer_id > :after
    ORDER BY f.customer_id LIMIT :limit
    """
)
_MEMBERS = text(
    """
    SELECT customer_id FROM customer_file
    WHERE store_id = :store_id AND status = 'active' AND customer_id = ANY(:ids)
    ORDER BY customer_id
    """
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """The recipients among the files scanned; ``last`` the last file scanned (None: no more)."""

    recipients: list[str]
    scanned: int
    last: str | None


async def next_chunk(
    session: AsyncSession,
    campaign: Campaign,
    *,
    after: str | None,
    limit: int,
    today: date,
    default_timezone: str,
    members: list[str] | None = None,
) -> Chunk:
    """The campaign's recipients among the next ``limit`` files after ``after``.

    ``members``: a manual campaign's segment, sorted; ``today``: the store's day."""
    kind = Kind(campaign.kind)
    start = after or ""
    if kind is Kind.MANUAL:
        assert members is not None
        import bisect

        first = bisect.bisect_right(members, start)
        ids = members[first : first + limit]
        if not ids:
            return Chunk([], 0, None)
        found = (
            await session.execute(_MEMBERS, {"store_id": campaign.store_id, "ids": ids})
        ).scalars()
        return Chunk(list(found), len(ids), ids[-1])
    if kind is Kind.MISS_YOU:
        assert campaign.unseen_days is not None
        cutoff = today - timedelta(days=campaign.unseen_days)
        rows = (
            await session.execute(
                _SEEN, {"store_id": campaign.store_id, "after": start, "limit": limit}
            )
        ).all()
        chosen = []
        for row in rows:
            seen = [d for d in (row.last_purchase_on,) if d is not None]
            if row.last_visit_at is not None:
                zone = ZoneInfo(row.timezone or default_timezone)
                seen.append(row.last_visit_at.astimezone(zone).date())
            if seen and max(seen) <= cutoff:
                chosen.append(row.customer_id)
        return Chunk(chosen, len(rows), rows[-1].customer_id if rows else None)
    birthdays = kind is Kind.BIRTHDAY
    rows = (
        await session.execute(
            _FILES,
            {
                "store_id": campaign.store_id,
                "after": start,
                "limit": limit,
                "birthdays": birthdays,
            },
        )
    ).all()
    if birthdays:
        assert campaign.date_from is not None
        first_day, last_day = campaign.date_from, campaign.date_to or campaign.date_from
        chosen = [
            row.customer_id
            for row in rows
            if any(
                o.occasion is Occasion.BIRTHDAY
                for o in personal_occasions(
                    PersonalDates(birthday=row.birthday, birthday_calendar=row.birthday_calendar),
                    start=first_day,
                    end=last_day,
                )
            )
        ]
    else:
        chosen = [row.customer_id for row in rows]
    return Chunk(chosen, len(rows), rows[-1].customer_id if rows else None)
