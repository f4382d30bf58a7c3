"""``customer.merged`` in scoring (real PostgreSQL): the duplicate's facts fold into the
survivor, its row goes, the store is re-ranked with score.changed for the survivor, a replay
changes nothing, a late purchase of the duplicate reaches the survivor, and chains follow."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from scoring_service.scores import consumed, merges, service
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.handlers import make_batch_handler

STORE = "merge-store"


def sale(n: int, *, customer: str, store: str, total: str = "100.00", ago: int = 1) -> PurchaseSeen:
    at = datetime.now(UTC) - timedelta(days=ago)
    return PurchaseSeen(
        f"{store}-{customer}-{n}",
        store,
        customer,
        at,
        at.date(),
        "Asia/Shanghai",
        Decimal(total),
        30,
    )


async def _scores(session: AsyncSession) -> dict[str, Any]:
    rows = await session.execute(
        text(
            "SELECT customer_id, purchase_count, net_spend_365d, value_tier, first_purchase_at,"
            " last_purchase_at, version FROM customer_score WHERE store_id = :s"
        ),
        {"s": STORE},
    )
    return {r.customer_id: r for r in rows}


async def _staged(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(
        text("SELECT envelope FROM outbox_event WHERE topic = 'crm.scores.v1' ORDER BY id")
    )
    return [r[0] for r in rows]


def _merged_event(duplicate: str, survivor: str) -> consumed.ConsumedEvent:
    envelope = EventEnvelope(
        type="customer.merged",
        store_id=STORE,
        customer_id=duplicate,
        payload={"file": {"status": "merged", "version": 2}, "merged_into": survivor},
    )
    return consumed.decode_event(envelope.to_bytes())


async def test_the_duplicate_folds_into_the_survivor_once(session: AsyncSession) -> None:
    # Ten spenders, so one purchase's worth moves the survivor up the pyramid.
    others = [
        sale(i, customer=f"o{i}", store=STORE, total=f"{300 + i}.00", ago=5) for i in range(10)
    ]
    survivor = sale(1, customer="surv", store=STORE, total="100.00", ago=30)
    duplicate = [
        sale(2, customer="dupe", store=STORE, total="250.00", ago=60),
        sale(3, customer="dupe", store=STORE, total="250.00", ago=2),
    ]
    await service.apply_purchases(session, purchases=[*others, survivor, *duplicate])
    before = await _scores(session)
    assert before["surv"].value_tier == "small"
    staged_before = len(await _staged(session))

    handle = make_batch_handler(as_of=None)
    event = _merged_event("dupe", "surv")
    assert event.merge == ("dupe", "surv", STORE)
    await handle(session, [event])

    after = await _scores(session)
    assert "dupe" not in after
    surv = after["surv"]
    assert surv.purchase_count == 3
    assert surv.net_spend_365d == Decimal("600.00")
    assert surv.first_purchase_at == duplicate[0].purchased_at
    assert surv.last_purchase_at == duplicate[1].purchased_at
    assert surv.value_tier == "vip"  # 600 is the store's most now
    changed = [e for e in (await _staged(session))[staged_before:] if e["customer_id"] == "surv"]
    # The supply run-out the purchases it took moved (scores/expected_dates.py), the tier's
    # change, then the survivor classified with them; each carrying the new run-out.
    assert [
        (e["payload"]["previous_tier"], e["payload"]["value_tier"], e["payload"]["cause"])
        for e in changed
    ] == [("small", "small", "merged"), ("small", "vip", "merged"), ("vip", "vip", "merged")]
    runs_out = (
        await session.execute(
            text("SELECT supply_runs_out_on FROM customer_score WHERE customer_id = 'surv'")
        )
    ).scalar_one()
    assert {e["payload"]["supply_runs_out_on"] for e in changed} == {runs_out.isoformat()}
    assert changed[-1]["payload"]["ladder_level"] == "E"  # three purchases now
    facts = await session.execute(
        text("SELECT count(*) FROM purchase_fact WHERE customer_id = 'dupe'")
    )
    assert facts.scalar_one() == 0

    # A replay changes nothing: no row, no event, the same aggregate.
    staged = len(await _staged(session))
    await handle(session, [_merged_event("dupe", "surv")])
    assert len(await _staged(session)) == staged
    again = await _scores(session)
    assert again == after

    # A purchase of the duplicate consumed after the merge is the survivor's.
    late = sale(4, customer="dupe", store=STORE, total="50.00", ago=1)
    await handle(session, [consumed.ConsumedEvent("e-late", purchase=late)])
    final = await _scores(session)
    assert "dupe" not in final
    assert final["surv"].purchase_count == 4
    assert final["surv"].net_spend_365d == Decimal("650.00")


async def test_a_survivor_merged_on_takes_the_earlier_files_with_it(
    session: AsyncSession,
) -> None:
    await service.apply_purchases(
        session,
        purchases=[
            sale(1, customer="a", store=STORE, total="10.00"),
            sale(2, customer="b", store=STORE, total="20.00"),
            sale(3, customer="c", store=STORE, total="40.00"),
        ],
    )
    handle = make_batch_handler(as_of=None)
    # b into c arrives before a into b (two files, two partitions: no order between them).
    await handle(session, [_merged_event("b", "c")])
    await handle(session, [_merged_event("a", "b")])
    # And within one batch: d into e, then e into c.
    await service.apply_purchases(
        session,
        purchases=[
            sale(5, customer="d", store=STORE, total="1.00"),
            sale(6, customer="e", store=STORE, total="2.00"),
        ],
    )
    await handle(session, [_merged_event("d", "e"), _merged_event("e", "c")])
    scores = await _scores(session)
    assert set(scores) == {"c"}
    assert scores["c"].net_spend_365d == Decimal("73.00")
    assert scores["c"].purchase_count == 5
    survivors = dict(
        (await session.execute(text("SELECT customer_id, survivor_id FROM merged_customer"))).all()
    )
    assert survivors == {"a": "c", "b": "c", "d": "c", "e": "c"}
    late = sale(7, customer="a", store=STORE, total="7.00")
    assert [p.customer_id for p in await merges.rekeyed(session, [late])] == ["c"]


async def test_a_survivor_without_a_score_yet_gets_one(session: AsyncSession) -> None:
    await service.apply_purchases(
        session, purchases=[sale(1, customer="only", store=STORE, total="80.00")]
    )
    await make_batch_handler(as_of=None)(session, [_merged_event("only", "unseen")])
    scores = await _scores(session)
    assert set(scores) == {"unseen"}
    assert scores["unseen"].net_spend_365d == Decimal("80.00")
    assert scores["unseen"].value_tier == "vip"
    # Its registration, arriving late, changes nothing.
    await service.register_prospects(session, customers=[("unseen", STORE, "Asia/Shanghai")])
    assert (await _scores(session))["unseen"].purchase_count == 1


def test_erasure_is_decoded_and_changes_nothing() -> None:
    envelope = EventEnvelope(
        type="customer.erased",
        store_id=STORE,
        customer_id="x",
        payload={"file": {"status": "erased", "version": 3}},
    )
    event = consumed.decode_event(envelope.to_bytes())
    assert event.merge is None and event.purchase is None and event.prospect is None
