"""Each staff member's follow-up completion by month, kept from engagement's
``staff.month_closed`` on ``crm.engagement.v1`` (deploy/README.md), for the pool's rules: the
customer service asks engagement nothing when a manager assigns pool files.

One row per staff member and month; an event applies only when newer than the one held
(``occurred_at``), so a redelivery or a replay of an older close changes nothing.
"""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from crm_libs.events.event_types import STAFF_MONTH_CLOSED

_UPSERT = text(
    """
    INSERT INTO staff_month_completion
        (staff_id, month, store_id, completion_rate, tasks_due, closed_at)
    SELECT * FROM unnest(CAST(:staff AS text[]), CAST(:months AS date[]),
                         CAST(:stores AS text[]), CAST(:rates AS numeric[]),
                         CAST(:due AS integer[]), CAST(:ats AS timestamptz[]))
    ON CONFLICT (staff_id, month) DO UPDATE SET
        store_id = excluded.store_id, completion_rate = excluded.completion_rate,
        tasks_due = excluded.tasks_due, closed_at = excluded.closed_at
    WHERE staff_month_completion.closed_at < excluded.closed_at
    """
)


def _month_of(event: EventEnvelope) -> tuple[str, date, Decimal, int]:
    """The staff id, the month's first day, the rate and the tasks due; a ValueError (a dead
    letter) for a payload that does not carry them."""
    payload = event.payload
    staff_id = payload.get("staff_id")
    if not isinstance(staff_id, str) or not staff_id:
        raise ValueError(f"{event.type} without a staff_id")
    try:
        month = date.fromisoformat(f"{payload['month']}-01")
        rate = Decimal(str(payload["completion_rate"]))
        due = int(payload.get("tasks_due") or 0)
    except (KeyError, TypeError, InvalidOperation) as exc:
        raise ValueError(f"{event.type} with an unreadable month or rate: {exc}") from exc
    if not Decimal(0) <= rate <= Decimal(1):
        raise ValueError(f"{event.type} with a completion rate outside 0..1: {rate}")
    return staff_id, month, rate, due


async def apply_months_closed(session: AsyncSession, events: list[EventEnvelope]) -> None:
    """The newest close of each staff member's month in the batch, where newer than the one
    held."""
    newest: dict[tuple[str, date], tuple[EventEnvelope, Decimal, int]] = {}
    for event in events:
        staff_id, month, rate, due = _month_of(event)
        held = newest.get((staff_id, month))
        if held is None or event.occurred_at > held[0].occurred_at:
            newest[(staff_id, month)] = (event, rate, due)
    closes: list[tuple[str, date, str, Decimal, int, datetime]] = [
        (staff_id, month, e.store_id, rate, due, e.occurred_at)
        for (staff_id, month), (e, rate, due) in newest.items()
    ]
    await session.execute(
        _UPSERT,
        {
            "staff": [c[0] for c in closes],
            "months": [c[1] for c in closes],
            "stores": [c[2] for c in closes],
            "rates": [c[3] for c in closes],
            "due": [c[4] for c in closes],
            "ats": [c[5] for c in closes],
        },
    )


HANDLERS = {STAFF_MONTH_CLOSED: apply_months_closed}
