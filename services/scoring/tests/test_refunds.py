"""Refunds in scoring against a real, migrated PostgreSQL, through the consumer's batch handler:
net spend and supply taken back at the purchase's time, the store re-ranked (a customer drops,
another moves up), the classifications following, a refund before its purchase kept until it
arrives, each refund applied once, and a recompute from the facts finding nothing to correct."""

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.envelope import EventEnvelope
from scoring_service.scores import recompute
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed import ConsumedEvent, decode_event
from scoring_service.scores.handlers import make_batch_handler
from scoring_service.scores.refund_facts import RefundSeen

AS_OF = date(2026, 3, 31)
NOW = datetime(2026, 3, 31, 6, tzinfo=UTC)
_ids = itertools.count(1)
RFM = ("rfm_r", "rfm_f", "rfm_m", "rfm_segment")
consume = make_batch_handler(as_of=AS_OF)


def bought(
    customer: str, store: str, days_ago: int, total: str, supply_days: int = 30
) -> PurchaseSeen:
    at = NOW - timedelta(days=days_ago)
    return PurchaseSeen(
        purchase_id=f"rf-{next(_ids)}",
        store_id=store,
        customer_id=customer,
        purchased_at=at,
        purchased_on=at.date(),
        timezone="UTC",
        total=Decimal(total),
        supply_days=supply_days,
    )


def refund_of(p: PurchaseSeen, total: str, supply_days: int) -> RefundSeen:
    return RefundSeen(
        refund_id=f"rf-refund-{next(_ids)}",
        purchase_id=p.purchase_id,
        store_id=p.store_id,
        customer_id=p.customer_id,
        refunded_at=NOW - timedelta(hours=1),
        total=Decimal(total),
        supply_days=supply_days,
    )


def event(item: PurchaseSeen | RefundSeen) -> ConsumedEvent:
    if isinstance(item, PurchaseSeen):
        return ConsumedEvent(f"ev-{item.purchase_id}", purchase=item)
    return ConsumedEvent(str(uuid.uuid4()), refund=item)


async def consumed(
    sessions: async_sessionmaker[AsyncSession], items: list[PurchaseSeen | RefundSeen]
) -> None:
    async with sessions() as session, session.begin():
        await consume(session, [event(i) for i in items])


async def scores(sessions: async_sessionmaker[AsyncSession], store: str) -> dict[str, Any]:
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT * FROM customer_score WHERE store_id = :s"), {"s": store}
        )
        return {r.customer_id: r for r in rows}


async def history(sessions: async_sessionmaker[AsyncSession], customer: str) -> list[Any]:
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT field, previous, value, cause FROM score_history "
                "WHERE customer_id = :c ORDER BY id"
            ),
            {"c": customer},
        )
        return [tuple(r) for r in rows]


async def published(sessions: async_sessionmaker[AsyncSession], customer: str) -> list[Any]:
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT envelope FROM outbox_event WHERE key = :c ORDER BY id"),
            {"c": customer},
        )
        return [r[0]["payload"] for r in rows]


async def nothing_to_correct(sessions: async_sessionmaker[AsyncSession], store: str) -> None:
    """The rebuild from the stored facts gives exactly what the incremental path left, apart
    from the RFM scores of customers the batch did not touch: between two daily ageings a batch
    scores against the boundaries kept for the store, a recompute computes them afresh
    (scores/rfm.py; tests/test_score_rebuild.py compares them after the day's ageing)."""
    before = await scores(sessions, store)
    async with sessions() as session, session.begin():
        again = await recompute.recompute_store(session, store_id=store, as_of=AS_OF)
    assert (again.corrected, again.changed) == (0, 0)
    after = await scores(sessions, store)
    differing = {
        (c, column)
        for c, row in after.items()
        for column, value in row._mapping.items()
        if before[c]._mapping[column] != value and column not in RFM
    }
    assert differing == set()


async def test_a_refund_lowers_its_customer_and_moves_another_up(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = "rf-pyramid"
    big = bought(f"{store}-0", store, 20, "900.00", supply_days=60)
    others = [bought(f"{store}-{i}", store, 10 + i, f"{100 + 50 * i}.00") for i in range(1, 6)]
    await consumed(sessions, [big, *others])
    before = await scores(sessions, store)
    assert before[f"{store}-0"].value_tier == "vip"
    assert before[f"{store}-5"].value_tier != "vip"
    runs_out = before[f"{store}-0"].supply_runs_out_on
    assert runs_out == big.purchased_on + timedelta(days=60)

    # 800.00 and 40 days' supply back (of 900.00 and 60 days).
    await consumed(sessions, [refund_of(big, "800.00", 40)])
    after = await scores(sessions, store)
    dropped, lifted = after[f"{store}-0"], after[f"{store}-5"]
    assert dropped.net_spend_365d == Decimal("100.00")
    assert dropped.supply_runs_out_on == runs_out - timedelta(days=40)
    assert dropped.purchase_count == 1
    assert dropped.value_tier == "small" and lifted.value_tier == "vip"
    assert ("value_tier", "vip", "small", "refund") in await history(sessions, f"{store}-0")
    assert ("value_tier", "medium", "vip", "refund") in await history(sessions, f"{store}-5")
    changed = await published(sessions, f"{store}-5")
    assert changed[-1]["value_tier"] == "vip" and changed[-1]["cause"] == "refund"
    await nothing_to_correct(sessions, store)


async def test_a_refund_delivered_again_is_applied_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = "rf-once"
    p = bought(f"{store}-0", store, 5, "300.00")
    await consumed(sessions, [p])
    refund = refund_of(p, "100.00", 10)
    await consumed(sessions, [refund])
    await consumed(sessions, [refund, refund])
    score = (await scores(sessions, store))[f"{store}-0"]
    assert score.net_spend_365d == Decimal("200.00")
    assert score.supply_runs_out_on == p.purchased_on + timedelta(days=20)
    await nothing_to_correct(sessions, store)


async def test_a_refund_before_its_purchase_waits_for_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = "rf-early"
    first = bought(f"{store}-0", store, 50, "120.00")
    late = bought(f"{store}-0", store, 8, "400.00", supply_days=90)
    rival = bought(f"{store}-1", store, 9, "350.00")
    await consumed(sessions, [first, rival])
    # The refund of a purchase scoring has not seen yet (sent back from the dead letters later).
    await consumed(sessions, [refund_of(late, "100.00", 30)])
    waiting = await scores(sessions, store)
    assert waiting[f"{store}-0"].net_spend_365d == Decimal("120.00")
    assert waiting[f"{store}-1"].value_tier == "vip"
    await consumed(sessions, [late])
    applied = await scores(sessions, store)
    customer = applied[f"{store}-0"]
    assert customer.net_spend_365d == Decimal("420.00")  # 120 + 400 - 100
    assert customer.purchase_count == 2
    assert customer.supply_runs_out_on == late.purchased_on + timedelta(days=60)
    assert customer.value_tier == "vip" and applied[f"{store}-1"].value_tier == "small"
    await nothing_to_correct(sessions, store)


async def test_a_refund_in_the_batch_of_its_purchase(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = "rf-same-batch"
    p = bought(f"{store}-0", store, 3, "250.00")
    await consumed(sessions, [p, refund_of(p, "50.00", 5)])
    score = (await scores(sessions, store))[f"{store}-0"]
    assert score.net_spend_365d == Decimal("200.00")
    assert score.supply_runs_out_on == p.purchased_on + timedelta(days=25)
    await nothing_to_correct(sessions, store)


@pytest.mark.parametrize("order", ["refund after", "refund first"])
async def test_a_wholly_refunded_only_purchase_leaves_a_prospect(
    sessions: async_sessionmaker[AsyncSession], order: str
) -> None:
    store = f"rf-whole-{order.replace(' ', '-')}"
    only = bought(f"{store}-0", store, 30, "500.00")
    kept = bought(f"{store}-1", store, 40, "80.00")
    refund = refund_of(only, "500.00", 30)
    if order == "refund after":
        await consumed(sessions, [only, kept])
        assert (await scores(sessions, store))[f"{store}-0"].lifecycle == "new_this_year"
        await consumed(sessions, [refund])
    else:
        await consumed(sessions, [refund])
        await consumed(sessions, [only, kept])
    after = await scores(sessions, store)
    gone = after[f"{store}-0"]
    assert (gone.purchase_count, gone.net_spend_365d) == (0, Decimal("0.00"))
    assert gone.first_purchase_at is None and gone.supply_runs_out_on is None
    assert (gone.value_tier, gone.lifecycle, gone.ladder_level) == ("prospect", None, None)
    assert after[f"{store}-1"].value_tier == "vip"  # the only spender left
    if order == "refund after":
        assert ("lifecycle", "new_this_year", None, "refund") in await history(
            sessions, f"{store}-0"
        )
    await nothing_to_correct(sessions, store)
    # Bought again: a customer once more, the refunded purchase still not counted.
    again = bought(f"{store}-0", store, 2, "60.00")
    await consumed(sessions, [again])
    back = (await scores(sessions, store))[f"{store}-0"]
    assert (back.purchase_count, back.net_spend_365d) == (1, Decimal("60.00"))
    assert back.first_purchase_at == again.purchased_at
    await nothing_to_correct(sessions, store)


def test_purchase_refunded_is_decoded_as_the_customer_service_writes_it() -> None:
    payload = {
        "purchase_id": "p-1",
        "refund_id": "r-1",
        "reason": "no_effect",
        "refunded_at": "2026-03-30T08:00:00+00:00",
        "refunded_on": "2026-03-30",
        "purchased_at": "2026-03-01T08:00:00+00:00",
        "purchased_on": "2026-03-01",
        "timezone": "Asia/Shanghai",
        "total": "180.00",
        "lines": [
            {
                "sku": "A",
                "category": "c",
                "qty": 2,
                "unit_price": "90.00",
                "amount": "180.00",
                "days_per_unit": 30,
            },
            {
                "sku": "B",
                "category": None,
                "qty": 1,
                "unit_price": "0.00",
                "amount": "0.00",
                "days_per_unit": 5,
            },
        ],
    }
    envelope = EventEnvelope(
        type="purchase.refunded",
        occurred_at=datetime(2026, 3, 30, 8, tzinfo=UTC),
        store_id="s-1",
        customer_id="c-1",
        payload=payload,
    )
    refund = decode_event(envelope.to_bytes()).refund
    assert refund is not None
    assert (refund.refund_id, refund.purchase_id, refund.store_id, refund.customer_id) == (
        "r-1",
        "p-1",
        "s-1",
        "c-1",
    )
    assert (refund.total, refund.supply_days) == (Decimal("180.00"), 65)
    # Written another way (a number for the total): the lenient path, the same refund.
    payload["total"] = 180
    lenient = EventEnvelope(**{**envelope.model_dump(), "payload": payload})
    assert decode_event(lenient.to_bytes()).refund == refund
