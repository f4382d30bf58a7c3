"""What the customer service does with each batch it consumes, by event type.

One handler per type, given the batch's events of that type in the batch's order and its
transaction; types without a handler are skipped (the topics carry events for other services).
A new kind of event is one entry in ``HANDLERS`` (and its topic in ``main.CONSUMED_TOPICS``).
"""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from customer_service import score_copy
from customer_service.member_events import consumer as member_events
from customer_service.ownership import completion as staff_completion
from customer_service.visits import events as visit_events
from customer_service.visits import service as visits

EventHandler = Callable[[AsyncSession, list[EventEnvelope]], Awaitable[None]]

HANDLERS: dict[str, EventHandler] = {
    score_copy.SCORE_CHANGED: score_copy.apply_score_changes,
    visit_events.VISIT_RECORDED: visits.apply_visits,
    **member_events.HANDLERS,
    **staff_completion.HANDLERS,
}


async def handle_events(session: AsyncSession, batch: list[EventEnvelope]) -> None:
    by_type: dict[str, list[EventEnvelope]] = {}
    for event in batch:
        if event.type in HANDLERS:
            by_type.setdefault(event.type, []).append(event)
    for event_type, events in by_type.items():
        await HANDLERS[event_type](session, events)
