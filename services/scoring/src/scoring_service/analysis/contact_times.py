"""The best times to reach a store's customers (DOMAIN.md §10): contacts and answered contacts
by weekday and hour in the store's time zone, from the visits and calls engagement logged.

A contact is a visit logged with a method that meets or speaks to the customer (phone, the
expert's phone, a home visit, a visit in the store); a care message is not one (nobody answers
it then and there). It is answered when engagement says the customer was reached
(``visit.recorded``'s ``reached``: its outcome does not say the call went unanswered, the line
was busy or off, or nobody was home — deploy/README.md). Weekdays are ISO's: 1 Monday … 7
Sunday. Best first: most answered, then the higher answer rate, then the earlier time.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from scoring_service.analysis.periods import Period
from scoring_service.analysis.planning import planned_per_call

CONTACT_METHODS = ("phone", "expert_phone", "home", "in_store")

_CONTACTS_SQL = """
    SELECT CAST(extract(isodow FROM occurred_at AT TIME ZONE $4) AS integer) AS weekday,
           CAST(extract(hour FROM occurred_at AT TIME ZONE $4) AS integer) AS hour,
           count(*) AS contacts, count(*) FILTER (WHERE reached) AS answered
    FROM analysis_contact
    WHERE store_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND method = ANY($5)
    GROUP BY 1, 2
"""


@dataclass(frozen=True, slots=True)
class Slot:
    weekday: int
    hour: int
    contacts: int
    answered: int
    answer_rate: float


async def contact_times(
    db: asyncpg.Connection, *, store_id: str, period: Period, timezone: str
) -> list[Slot]:
    zone = ZoneInfo(timezone)
    start = datetime.combine(period.start, time.min, zone)
    end = datetime.combine(period.end + timedelta(days=1), time.min, zone)
    async with planned_per_call(db):
        rows = await db.fetch(_CONTACTS_SQL, store_id, start, end, timezone, list(CONTACT_METHODS))
    slots = [
        Slot(
            weekday=r["weekday"],
            hour=r["hour"],
            contacts=r["contacts"],
            answered=r["answered"],
            answer_rate=round(r["answered"] / r["contacts"], 4),
        )
        for r in rows
    ]
    return sorted(slots, key=lambda s: (-s.answered, -s.answer_rate, s.weekday, s.hour))
