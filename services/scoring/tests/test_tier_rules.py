"""A store's own tier rules in the statements, against a real, migrated PostgreSQL: its window
decides the spend a batch ranks on, its lifecycle thresholds decide lost and stopped, its shares
the pyramid; another store keeps the defaults; a recompute with the rules gives exactly what the
consumer gave."""

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.principal import Principal, Role
from scoring_service.scores import recompute, tier_rules
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed import ConsumedEvent
from scoring_service.scores.handlers import make_batch_handler

AS_OF = date(2026, 3, 31)
NOW = datetime(2026, 3, 31, 6, tzinfo=UTC)
_ids = itertools.count(1)
consume = make_batch_handler(as_of=AS_OF)
HEAD_OFFICE = Principal(subject="hq", role=Role.HQ_ADMIN)


def bought(customer: str, store: str, days_ago: int, total: str) -> PurchaseSeen:
    at = NOW - timedelta(days=days_ago)
    return PurchaseSeen(
        purchase_id=f"tr-{next(_ids)}",
        store_id=store,
        customer_id=customer,
        purchased_at=at,
        purchased_on=at.date(),
        timezone="UTC",
        total=Decimal(total),
        supply_days=10,
    )


async def scores(sessions: async_sessionmaker[AsyncSession], store: str) -> dict[str, Any]:
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT * FROM customer_score WHERE store_id = :s"), {"s": store}
        )
        return {r.customer_id: r for r in rows}


async def test_a_stores_rules_decide_its_window_lifecycle_and_pyramid(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ruled, plain = "tr-ruled", "tr-plain"
    # 60 days ago: in the default 365-day window, outside a 45-day one. 42 days without a
    # purchase: lost after 30 days (stopped by default: the supply ran out 32 days ago). 20 days
    # ago with 10 days of supply: stopped after 5 days (in service by default).
    async with sessions() as session, session.begin():
        await consume(
            session,
            [ConsumedEvent(f"ev-{s}", prospect=(f"{s}-x", s, "UTC")) for s in (ruled, plain)],
        )
        await tier_rules.put_rules(
            session,
            principal=HEAD_OFFICE,
            store_id=ruled,
            rules=tier_rules.TierRules(
                vip_share=Decimal("0.5"),
                major_share=Decimal("0.6"),
                medium_share=Decimal("0.7"),
                window_days=45,
                lost_after_days=30,
                stopped_after_days=5,
            ),
        )
    for store in (ruled, plain):
        async with sessions() as session, session.begin():
            purchases = [
                bought(f"{store}-old", store, 60, "900.00"),
                bought(f"{store}-gone", store, 42, "50.00"),
                bought(f"{store}-out", store, 20, "40.00"),
                bought(f"{store}-new", store, 2, "30.00"),
            ]
            await consume(
                session, [ConsumedEvent(f"ev-{p.purchase_id}", purchase=p) for p in purchases]
            )
    own, default = await scores(sessions, ruled), await scores(sessions, plain)
    assert own[f"{ruled}-old"].net_spend_365d == 0
    assert own[f"{ruled}-old"].value_tier == "inactive"
    assert default[f"{plain}-old"].value_tier == "vip"
    assert own[f"{ruled}-gone"].lifecycle == "lost"
    assert default[f"{plain}-gone"].lifecycle == "stopped"
    assert own[f"{ruled}-out"].lifecycle == "stopped"
    assert default[f"{plain}-out"].lifecycle == "new_this_year"
    # Three spenders in the ruled store: p = 0, 1/3, 2/3 against 0.5, 0.6, 0.7; by default the
    # old purchase's 900.00 is the only one of four spenders under p < 0.2.
    assert [own[f"{ruled}-{c}"].value_tier for c in ("gone", "out", "new")] == [
        "vip",
        "vip",
        "medium",
    ]
    assert [default[f"{plain}-{c}"].value_tier for c in ("gone", "out", "new")] == ["small"] * 3
    for store, before in ((ruled, own), (plain, default)):
        async with sessions() as session, session.begin():
            again = await recompute.recompute_store(session, store_id=store, as_of=AS_OF)
        assert (again.corrected, again.changed) == (0, 0), store
        after = await scores(sessions, store)
        rfm = ("rfm_r", "rfm_f", "rfm_m", "rfm_segment")
        assert {
            (c, k)
            for c, row in after.items()
            for k, v in row._mapping.items()
            if k not in rfm and before[c]._mapping[k] != v
        } == set()
