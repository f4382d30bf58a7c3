"""The daily ageing against a real, migrated PostgreSQL, with the service's clock pinned and
moved (``as_of``: "now" is the end of that day, UTC): each store ages at its own local
midnight, once a day, by one leader at a time."""

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.envelope import EventEnvelope
from scoring_service.scores import scheduled, service
from scoring_service.scores.aggregates import PurchaseSeen

_ids = itertools.count(1)
# The year turns here; the rest of the test is relative to it.
NEW_YEAR = 2026


def bought(customer: str, store: str, zone: str, at: datetime, days: int = 30) -> PurchaseSeen:
    return PurchaseSeen(
        purchase_id=f"age-{next(_ids)}-{customer}",
        store_id=store,
        customer_id=customer,
        purchased_at=at,
        purchased_on=at.astimezone(ZoneInfo(zone)).date(),
        timezone=zone,
        total=Decimal("120.00"),
        supply_days=days,
    )


async def lifecycle_of(sessions: async_sessionmaker[AsyncSession], customer: str) -> str | None:
    async with sessions() as session:
        found = await session.execute(
            text("SELECT lifecycle FROM customer_score WHERE customer_id = :c"), {"c": customer}
        )
        return found.scalar_one()


async def published(sessions: async_sessionmaker[AsyncSession], customer: str) -> list[dict]:
    """The payloads of the customer's staged ``score.changed`` events, oldest first."""
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT envelope FROM outbox_event WHERE key = :c ORDER BY id"),
            {"c": customer},
        )
        return [EventEnvelope.model_validate(r[0]).payload for r in rows]


async def ageing_history(sessions: async_sessionmaker[AsyncSession], customer: str) -> list:
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT field, previous, value FROM score_history "
                "WHERE customer_id = :c AND cause = 'ageing' ORDER BY id"
            ),
            {"c": customer},
        )
        return [tuple(r) for r in rows]


async def test_a_customer_ages_into_the_new_year_at_the_stores_midnight_not_utcs(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Bought last year and the year before, no event: ``active_second_line`` until the year
    turns in Shanghai (16:00 UTC on 31 December), ``in_service_not_bought`` from then on, while
    the same customer of a store in UTC is still in the old year."""
    last_year, before = NEW_YEAR - 1, NEW_YEAR - 2
    eve, new_years_day_in_shanghai = date(last_year, 12, 30), date(last_year, 12, 31)
    stores = {"age-sh": "Asia/Shanghai", "age-utc": "UTC"}
    for store, zone in stores.items():
        async with sessions() as session, session.begin():
            await service.apply_purchases(
                session,
                purchases=[
                    bought(f"{store}-c", store, zone, datetime(before, 6, 1, 4, tzinfo=UTC)),
                    # 60 days of supply from 20 December: in service well into January.
                    bought(
                        f"{store}-c", store, zone, datetime(last_year, 12, 20, 4, tzinfo=UTC), 60
                    ),
                ],
                as_of=eve,
            )

    first = await scheduled.age_as_leader(sessions, as_of=eve)
    assert first is not None and {"age-sh", "age-utc"} <= set(first)
    assert await lifecycle_of(sessions, "age-sh-c") == "active_second_line"
    assert await lifecycle_of(sessions, "age-utc-c") == "active_second_line"

    # The same day again (a restart, the next check): nothing is aged twice.
    assert await scheduled.age_as_leader(sessions, as_of=eve) == {}

    # The clock moves to 31 December, 23:59:59 UTC: 1 January, 07:59 in Shanghai.
    now, _ = service.window_start(new_years_day_in_shanghai)
    assert now.year == last_year and now.astimezone(ZoneInfo("Asia/Shanghai")).year == NEW_YEAR
    second = await scheduled.age_as_leader(sessions, as_of=new_years_day_in_shanghai)
    assert second is not None and second["age-sh"] >= 1 and second["age-utc"] == 0
    assert await lifecycle_of(sessions, "age-sh-c") == "in_service_not_bought"
    assert await lifecycle_of(sessions, "age-utc-c") == "active_second_line"

    assert ("lifecycle", "active_second_line", "in_service_not_bought") in await ageing_history(
        sessions, "age-sh-c"
    )
    newest = (await published(sessions, "age-sh-c"))[-1]
    assert newest["lifecycle"] == "in_service_not_bought"
    assert newest["previous_lifecycle"] == "active_second_line"

    async with sessions() as session:
        aged_on = dict(
            (await session.execute(text("SELECT store_id, aged_on FROM store_ageing"))).all()
        )
    assert aged_on["age-sh"] == date(NEW_YEAR, 1, 1)
    assert aged_on["age-utc"] == new_years_day_in_shanghai


async def test_a_store_is_aged_once_a_day_whoever_leads(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    day = date(NEW_YEAR, 3, 1)
    async with sessions() as session, session.begin():
        await service.apply_purchases(
            session,
            purchases=[bought("once-c", "age-once", "UTC", datetime(NEW_YEAR, 2, 1, tzinfo=UTC))],
            as_of=day,
        )
    # Another replica leads: this one stands aside and ages nothing.
    async with sessions() as other:
        await other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": scheduled.AGEING_LOCK})
        assert await scheduled.age_as_leader(sessions, as_of=day) is None
        await other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": scheduled.AGEING_LOCK})
        await other.commit()
    assert await lifecycle_of(sessions, "once-c") is None

    # A leader that found the store due but was overtaken (it aged meanwhile, in another
    # replica's run): checked again under the store's lock, it is not aged twice.
    due = [s for s in await _due(sessions, day) if s.store_id == "age-once"]
    assert len(due) == 1
    assert "age-once" in (await scheduled.age_due_stores(sessions, as_of=day))
    async with sessions() as session, session.begin():
        again = await scheduled.age_store(
            session, store_id="age-once", today=due[0].today, as_of=day
        )
    assert again is None
    assert await lifecycle_of(sessions, "once-c") == "new_this_year"
    # The next day it ages again (nothing to change: the same lifecycle).
    assert (await scheduled.age_due_stores(sessions, as_of=day + timedelta(days=1))).get(
        "age-once"
    ) == 0


async def _due(sessions: async_sessionmaker[AsyncSession], day: date) -> list:
    async with sessions() as session:
        return await scheduled.stores_due(session, as_of=day)
