"""What care needs of a customer's file when a score moves: its store, owner, state and day."""

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_FILES_SQL = text(
    """
    SELECT customer_id, store_id, status, owner_staff_id, timezone FROM customer_file
    WHERE customer_id = ANY(CAST(:ids AS text[]))
    """
)


@dataclass(frozen=True)
class CareFile:
    customer_id: str
    store_id: str
    owner_staff_id: str | None
    # The store-local day now; active: tasks may be given (None status: no event of the file
    # seen yet, which a later customer event places with its owner, as a purchase's tasks).
    today: date
    active: bool


def local_day(now: datetime, timezone: str | None, default_timezone: str) -> date:
    """``now`` as a day in the store's time zone (the default for one unknown or invalid)."""
    try:
        zone = ZoneInfo(timezone or default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(default_timezone)
    return now.astimezone(zone).date()


async def care_files(
    session: AsyncSession,
    *,
    customers: dict[str, str],
    now: datetime,
    default_timezone: str,
) -> dict[str, CareFile]:
    """The files of ``customers`` (customer id → the store the score names)."""
    if not customers:
        return {}
    rows = {r.customer_id: r for r in await session.execute(_FILES_SQL, {"ids": sorted(customers)})}
    files = {}
    for customer_id, store_id in customers.items():
        row = rows.get(customer_id)
        files[customer_id] = CareFile(
            customer_id=customer_id,
            store_id=row.store_id if row else store_id,
            owner_staff_id=row.owner_staff_id if row else None,
            today=local_day(now, row.timezone if row else None, default_timezone),
            active=row is None or row.status == "active",
        )
    return files
