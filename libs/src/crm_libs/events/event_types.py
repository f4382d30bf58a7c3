"""Each topic's event types, as its contract in deploy/README.md names them.

A consumer reads a topic's types it has no use for and moves on (they are other services'), but
a type the topic's contract does not name is no event of that topic: a producer's bug, or a new
type published before its consumers know it. Claimed and skipped, it would be lost without a
trace; dead-lettered, it waits in ``<topic>.dlq`` for ``crm-dlq replay`` once the consumers know
it. A new type is one entry here, beside its contract in deploy/README.md.
"""

from collections.abc import Mapping

from crm_libs.events.topics import Topics

# crm.customers.v1: the customer file's events (the customer service).
CUSTOMER_REGISTERED = "customer.registered"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_ARCHIVED = "customer.archived"
CUSTOMER_MERGED = "customer.merged"
CUSTOMER_ERASED = "customer.erased"
# crm.customers.v1: a member's level moved by consumption (no ``file``: the file did not change).
CUSTOMER_LEVEL_CHANGED = "customer.level_changed"
# crm.purchases.v1: sales and refunds (the customer service).
PURCHASE_RECORDED = "purchase.recorded"
PURCHASE_REFUNDED = "purchase.refunded"
# crm.engagement.v1: visits, member-event attendance and guests, member events (engagement).
VISIT_RECORDED = "visit.recorded"
EVENT_ATTENDED = "event.attended"
EVENT_GUEST_BROUGHT = "event.guest_brought"
EVENT_SCHEDULED = "event.scheduled"
EVENT_CANCELLED = "event.cancelled"
# crm.engagement.v1: a staff member's month of follow-ups, closed (engagement).
STAFF_MONTH_CLOSED = "staff.month_closed"
# crm.scores.v1 (scoring).
SCORE_CHANGED = "score.changed"

EVENT_TYPES: Mapping[str, frozenset[str]] = {
    Topics.CUSTOMERS: frozenset(
        {
            CUSTOMER_REGISTERED,
            CUSTOMER_UPDATED,
            CUSTOMER_ARCHIVED,
            CUSTOMER_MERGED,
            CUSTOMER_ERASED,
            CUSTOMER_LEVEL_CHANGED,
        }
    ),
    Topics.PURCHASES: frozenset({PURCHASE_RECORDED, PURCHASE_REFUNDED}),
    Topics.ENGAGEMENT: frozenset(
        {
            VISIT_RECORDED,
            EVENT_ATTENDED,
            EVENT_GUEST_BROUGHT,
            EVENT_SCHEDULED,
            EVENT_CANCELLED,
            STAFF_MONTH_CLOSED,
        }
    ),
    Topics.SCORES: frozenset({SCORE_CHANGED}),
}


class UnknownEventType(ValueError):
    """A type the topic's contract does not name (a ValueError: consumers dead-letter it)."""

    def __init__(self, *, event_type: str, topic: str, known: frozenset[str]) -> None:
        super().__init__(
            f"unknown event type {event_type!r} on {topic}: its contract names "
            f"{', '.join(sorted(known))}"
        )
        self.event_type = event_type
        self.topic = topic


def check_event_type(topic: str, event_type: str) -> None:
    """Raise :class:`UnknownEventType` if ``topic``'s contract does not name ``event_type``.

    A topic without a contract here (a test's own) takes any type."""
    known = EVENT_TYPES.get(topic)
    if known is not None and event_type not in known:
        raise UnknownEventType(event_type=event_type, topic=topic, known=known)
