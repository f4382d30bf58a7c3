"""The stores' member events, kept from ``event.scheduled`` and ``event.cancelled`` on
``crm.engagement.v1`` (deploy/README.md), so that a purchase naming one (``member_event_id``) is
checked here, without asking engagement: a sale keeps working while engagement is down.

The price is a moment's lag: an event just scheduled is unknown until its announcement is
consumed (usually well under a second), and a sale naming it then is a 422 to retry.

One row per member event. A schedule is applied only when its envelope is newer than the one
held (a redelivery or replay of an older one changes nothing); a cancellation is final, even one
delivered before its schedule. The envelope's ``customer_id`` is the member event's id (the
partition key), the payload's ``event_id`` the same.
"""

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from crm_libs.events.event_types import EVENT_CANCELLED, EVENT_SCHEDULED

_SCHEDULE = text(
    """
    INSERT INTO member_event_known (event_id, store_id, scheduled_at)
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:stores AS text[]),
                         CAST(:ats AS timestamptz[]))
    ON CONFLICT (event_id) DO UPDATE SET
        store_id = excluded.store_id, scheduled_at = excluded.scheduled_at
    WHERE member_event_known.scheduled_at IS NULL
       OR member_event_known.scheduled_at < excluded.scheduled_at
    """
)
_CANCEL = text(
    """
    INSERT INTO member_event_known (event_id, cancelled_at)
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:ats AS timestamptz[]))
    ON CONFLICT (event_id) DO UPDATE SET
        cancelled_at = COALESCE(member_event_known.cancelled_at, excluded.cancelled_at)
    """
)


def _event_id(event: EventEnvelope) -> str:
    event_id = event.payload.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError(f"{event.type} without an event_id")  # a dead letter
    return event_id


async def apply_schedules(session: AsyncSession, events: list[EventEnvelope]) -> None:
    """The newest schedule of each member event in the batch, where newer than the one held."""
    newest: dict[str, tuple[str, datetime]] = {}
    for event in events:
        event_id = _event_id(event)
        held = newest.get(event_id)
        if held is None or event.occurred_at > held[1]:
            newest[event_id] = (event.store_id, event.occurred_at)
    await session.execute(
        _SCHEDULE,
        {
            "ids": list(newest),
            "stores": [store for store, _ in newest.values()],
            "ats": [at for _, at in newest.values()],
        },
    )


async def apply_cancellations(session: AsyncSession, events: list[EventEnvelope]) -> None:
    """Each cancelled member event, for good (the first cancellation's time is kept)."""
    first: dict[str, datetime] = {}
    for event in events:
        first.setdefault(_event_id(event), event.occurred_at)
    await session.execute(_CANCEL, {"ids": list(first), "ats": list(first.values())})


HANDLERS = {EVENT_SCHEDULED: apply_schedules, EVENT_CANCELLED: apply_cancellations}
