"""The scores' read copy takes ladder and lifecycle from ``score.changed`` as scoring publishes it
since it classifies (deploy/README.md, crm.scores.v1): every event carries the current tier,
ladder and lifecycle with their previous values, and a batch whose purchases moved a tier and
then the ladder publishes two events, the second with the higher version."""

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from crm_libs.ids import new_id
from customer_service.customers.models import Customer
from customer_service.handlers import handle_events
from customer_service.models import import_all_models
from customer_service.stores.models import Store

import_all_models()


def changed(customer: Customer, version: int, **now: Any) -> EventEnvelope:
    """A score.changed with every field scoring sends; ``now`` the values after the change, and
    ``was_*`` before it (the same when not given)."""
    current = {"value_tier": "small", "ladder_level": "0", "lifecycle": "new_this_year"}
    current.update({k: v for k, v in now.items() if not k.startswith("was_")})
    return EventEnvelope(
        type="score.changed",
        store_id=customer.store_id,
        customer_id=customer.id,
        payload={
            **current,
            "previous_tier": now.get("was_tier", current["value_tier"]),
            "previous_ladder_level": now.get("was_ladder", current["ladder_level"]),
            "previous_lifecycle": now.get("was_lifecycle", current["lifecycle"]),
            "ladder_score": 0,
            "net_spend_365d": "100.00",
            "cause": now.get("cause", "purchase"),
            "version": version,
        },
    )


async def copy_of(session: AsyncSession, customer: Customer) -> tuple[Any, ...]:
    row = await session.execute(
        text(
            "SELECT value_tier, ladder_level, lifecycle, score_version FROM customer WHERE id = :id"
        ),
        {"id": customer.id},
    )
    return tuple(row.one())


async def test_a_tier_and_then_a_ladder_change_in_one_batch_leave_the_newest(
    session: AsyncSession,
) -> None:
    store = Store(code=new_id(), name="Health store", timezone="Asia/Shanghai")
    session.add(store)
    await session.flush()
    customer = Customer(store_id=store.id, name="曾国藩")
    session.add(customer)
    await session.flush()
    tier_moved = changed(customer, 3, value_tier="medium", was_tier="small")
    classified = changed(
        customer,
        4,
        value_tier="medium",
        ladder_level="D",
        was_ladder="0",
        lifecycle="active_core",
        was_lifecycle="active_second_line",
        cause="event_attended",
    )
    # Delivered in either order (a redelivery, a rewound group): the higher version wins.
    await handle_events(session, [classified, tier_moved])
    assert await copy_of(session, customer) == ("medium", "D", "active_core", 4)
    # The floor cleared and the ladder back to what is earned; the lifecycle lost.
    await handle_events(
        session,
        [
            changed(
                customer,
                5,
                value_tier="inactive",
                ladder_level="A",
                was_ladder="D",
                lifecycle="lost",
                cause="floor_set",
            ),
            changed(
                customer,
                6,
                value_tier="inactive",
                ladder_level="E",
                was_ladder="A",
                lifecycle="lost",
                cause="floor_cleared",
            ),
        ],
    )
    assert await copy_of(session, customer) == ("inactive", "E", "lost", 6)
