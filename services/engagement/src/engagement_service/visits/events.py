"""``visit.recorded`` on ``crm.engagement.v1`` (deploy/README.md, "crm.engagement.v1: visits"):
the customer service applies the fields collected to the file; scoring counts the contacts by
hour and weekday (its method, and whether the customer was reached — never the outcome's words)."""

from crm_libs.events.envelope import EventEnvelope
from crm_libs.events.event_types import VISIT_RECORDED
from engagement_service.visits.models import Visit
from engagement_service.visits.reached import reached


def visit_recorded(visit: Visit) -> EventEnvelope:
    """The event of a visit, for the outbox row written with it (topic ``Topics.ENGAGEMENT``)."""
    return EventEnvelope(
        type=VISIT_RECORDED,
        occurred_at=visit.occurred_at,
        store_id=visit.store_id,
        customer_id=visit.customer_id,
        payload={
            "visit_id": visit.id,
            "staff_id": visit.staff_id,
            "occurred_at": visit.occurred_at.isoformat(),
            "method": visit.method,
            "reached": reached(visit.outcome),
            "collected": visit.collected,
        },
    )
