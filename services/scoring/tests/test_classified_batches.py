"""A consumed batch (the consumer's handler, on PostgreSQL) writes each of its customers' rows
once, tier and classification together, and publishes one ``score.changed`` per customer
carrying whatever of tier, ladder and lifecycle moved, with their history in the same
statement. Customers the statement cannot classify (a back-dated purchase) and a buyer's
referrer are classified after it, as before."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed import ConsumedEvent
from scoring_service.scores.handlers import make_batch_handler

handle = make_batch_handler(as_of=None)


def purchase(tag: str, customer: str, *, days_ago: int, total: str = "40.00") -> ConsumedEvent:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    return ConsumedEvent(
        event_id=str(uuid.uuid4()),
        purchase=PurchaseSeen(
            purchase_id=f"{tag}-{uuid.uuid4().hex[:8]}",
            store_id=f"{tag}-s",
            customer_id=customer,
            purchased_at=at,
            purchased_on=at.date(),
            timezone="UTC",
            total=Decimal(total),
            supply_days=30,
        ),
    )


async def writes(session: AsyncSession) -> tuple[int, int]:
    """customer_score's rows this transaction has inserted and updated so far."""
    row = await session.execute(
        text(
            "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables"
            " WHERE relname = 'customer_score'"
        )
    )
    ins, upd = row.one()
    return int(ins), int(upd)


async def staged(session: AsyncSession, tag: str) -> list[dict]:
    rows = await session.execute(
        text("SELECT envelope FROM outbox_event WHERE key LIKE :k ORDER BY id"), {"k": f"{tag}-%"}
    )
    return [EventEnvelope.model_validate(e).model_dump(mode="json") for e in rows.scalars()]


async def history(session: AsyncSession, customer: str) -> list[tuple[str, str | None, str]]:
    rows = await session.execute(
        text("SELECT field, value, cause FROM score_history WHERE customer_id = :c ORDER BY id"),
        {"c": customer},
    )
    return [tuple(r) for r in rows.all()]


async def test_a_batch_writes_each_row_once_and_publishes_one_event_per_customer(
    session: AsyncSession,
) -> None:
    tag = f"one-{uuid.uuid4().hex[:6]}"
    buyers = [f"{tag}-c{n}" for n in range(6)]
    before = await writes(session)
    await handle(
        session,
        [
            purchase(tag, c, days_ago=40 - n, total=f"{10 * (n + 1)}.00")
            for n, c in enumerate(buyers)
        ]
        + [purchase(tag, buyers[0], days_ago=3)]  # a second purchase: ladder E
        # Three repeat purchases in the loyalty window: loyal.
        + [purchase(tag, buyers[5], days_ago=d) for d in (30, 20, 10)],
    )
    # New files: one INSERT each, no UPDATE (adding, then classifying, wrote each row twice).
    assert await writes(session) == (before[0] + len(buyers), before[1])
    events = await staged(session, tag)
    assert sorted(e["customer_id"] for e in events) == sorted(buyers)
    first = next(e["payload"] for e in events if e["customer_id"] == buyers[0])
    runs_out = (datetime.now(UTC) - timedelta(days=3)).date() + timedelta(days=30)
    assert first == {
        "value_tier": first["value_tier"],
        "previous_tier": None,
        "ladder_level": "E",
        "previous_ladder_level": None,
        "ladder_score": 20,
        "lifecycle": first["lifecycle"],  # which one depends on the day of the year
        "previous_lifecycle": None,
        "net_spend_365d": "50.00",
        "cause": "purchase",
        "version": 1,
        # 30 days from 40 days ago, then 30 more from 3 days ago (scores/expected_dates.py)
        "supply_runs_out_on": runs_out.isoformat(),
        "expected_purchase_on": runs_out.isoformat(),
    }
    assert first["value_tier"] in {"vip", "major", "medium", "small"}
    assert first["lifecycle"] is not None
    # The history of all three, from the same statement.
    assert [f for f, _, _ in await history(session, buyers[0])] == [
        "value_tier",
        "ladder_level",
        "lifecycle",
    ]
    assert {c for _, _, c in await history(session, buyers[0])} == {"purchase"}
    score = await session.execute(
        text(
            "SELECT ladder_level, loyalty, lifecycle, classified_on, version FROM customer_score"
            " WHERE customer_id = :c"
        ),
        {"c": buyers[0]},
    )
    ladder, loyalty, lifecycle, classified_on, version = score.one()
    assert (ladder, loyalty, lifecycle, version) == ("E", "floating", first["lifecycle"], 1)
    assert classified_on == datetime.now(UTC).date()
    loyal = await session.execute(
        text("SELECT loyalty FROM customer_score WHERE customer_id = :c"), {"c": buyers[5]}
    )
    assert loyal.scalar_one() == "loyal"

    # Stored customers buying again: one UPDATE each, at most one event each; the others whose
    # tier their spend moved are written once too (their rank), with a tier-only event.
    before = await writes(session)
    await handle(session, [purchase(tag, c, days_ago=1) for c in buyers[1:3]])
    again = (await staged(session, tag))[len(events) :]
    assert len(again) == len({e["customer_id"] for e in again})
    pushed = [e["payload"] for e in again if e["customer_id"] not in buyers[1:3]]
    assert await writes(session) == (before[0], before[1] + 2 + len(pushed))
    for event in pushed:
        assert event["cause"] == "rank_moved"
        assert event["ladder_level"] == event["previous_ladder_level"]
        assert event["lifecycle"] == event["previous_lifecycle"]
    bought = {e["customer_id"]: e["payload"] for e in again if e["customer_id"] in buyers[1:3]}
    assert set(bought) == set(buyers[1:3])  # ladder 0 -> E, whatever the tier did
    for payload in bought.values():
        assert (payload["previous_ladder_level"], payload["ladder_level"]) == ("0", "E")
        assert (payload["version"], payload["cause"]) == (2, "purchase")


async def test_a_back_dated_purchase_and_a_referrer_are_classified_after_the_add(
    session: AsyncSession,
) -> None:
    tag = f"late-{uuid.uuid4().hex[:6]}"
    late, referred, referrer = f"{tag}-late", f"{tag}-referred", f"{tag}-referrer"
    await handle(session, [purchase(tag, late, days_ago=5), purchase(tag, referrer, days_ago=5)])
    await session.execute(
        text(
            "INSERT INTO customer_link (customer_id, store_id, referrer_id, uses_competitor,"
            " version) VALUES (:c, :s, :r, false, 1)"
        ),
        {"c": referred, "s": f"{tag}-s", "r": referrer},
    )
    # Back-dated: before the stored last purchase; its aggregates are rebuilt, then classified.
    await handle(session, [purchase(tag, late, days_ago=20), purchase(tag, referred, days_ago=2)])
    score = await session.execute(
        text(
            "SELECT customer_id, purchase_count, ladder_level FROM customer_score"
            " WHERE customer_id = ANY(:c)"
        ),
        {"c": [late, referrer]},
    )
    assert {c: (n, level) for c, n, level in score.all()} == {
        late: (2, "E"),  # a second purchase, counted after the rebuild
        referrer: (1, "B"),  # a referred customer bought
    }
    assert ("ladder_level", "B", "referral") in await history(session, referrer)
