"""What engagement announces of member events on ``crm.engagement.v1`` (deploy/README.md):
``event.scheduled`` and ``event.cancelled`` (keyed by the member event's id: no customer is
concerned, and one event's announcements stay in order on one partition), ``event.attended`` and
``event.guest_brought`` (keyed by the customer) for scoring's member ladder and lifecycle."""

from datetime import datetime

from crm_libs.events.envelope import EventEnvelope
from crm_libs.events.event_types import (
    EVENT_ATTENDED,
    EVENT_CANCELLED,
    EVENT_GUEST_BROUGHT,
    EVENT_SCHEDULED,
)
from engagement_service.member_events.models import EventGuest, StoreEvent


def event_scheduled(event: StoreEvent, *, at: datetime) -> EventEnvelope:
    return EventEnvelope(
        type=EVENT_SCHEDULED,
        occurred_at=at,
        store_id=event.store_id,
        customer_id=event.id,
        payload={
            "event_id": event.id,
            "starts_at": event.starts_at.isoformat(),
            "title": event.title,
        },
    )


def event_cancelled(event: StoreEvent, *, at: datetime) -> EventEnvelope:
    return EventEnvelope(
        type=EVENT_CANCELLED,
        occurred_at=at,
        store_id=event.store_id,
        customer_id=event.id,
        payload={"event_id": event.id, "cancelled_at": at.isoformat()},
    )


def event_attended(event: StoreEvent, *, customer_id: str, at: datetime) -> EventEnvelope:
    return EventEnvelope(
        type=EVENT_ATTENDED,
        occurred_at=at,
        store_id=event.store_id,
        customer_id=customer_id,
        payload={"event_id": event.id, "attended_at": at.isoformat()},
    )


def guest_brought(event: StoreEvent, *, guest: EventGuest) -> EventEnvelope:
    """One per guest, from the inviter: the guest's file when it is known at check-in."""
    return EventEnvelope(
        type=EVENT_GUEST_BROUGHT,
        occurred_at=guest.brought_at,
        store_id=event.store_id,
        customer_id=guest.inviter_customer_id,
        payload={
            "event_id": event.id,
            "brought_at": guest.brought_at.isoformat(),
            "guest_customer_id": guest.guest_customer_id,
        },
    )
