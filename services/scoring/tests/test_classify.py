"""DOMAIN.md §3's ladder, loyalty, lifecycle and RFM at their boundaries, against a real,
migrated PostgreSQL: purchases go in through the scoring service, signals and file links as the
consumer stores them, and the classification runs as of a chosen moment."""

import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from scoring_service.scores import classify, history, rfm, service
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.thresholds import DEFAULT_THRESHOLDS

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(1)


def bought(
    customer: str, at: datetime, *, store: str, total: str = "100.00", supply_days: int = 30
) -> PurchaseSeen:
    return PurchaseSeen(
        purchase_id=f"p{next(_ids)}-{customer}",
        store_id=store,
        customer_id=customer,
        purchased_at=at,
        purchased_on=at.astimezone(SHANGHAI).date(),
        timezone="Asia/Shanghai",
        total=Decimal(total),
        supply_days=supply_days,
    )


def local(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI)


async def buy(session: AsyncSession, purchases: list[PurchaseSeen], *, now: datetime) -> None:
    await service.apply_purchases(session, purchases=purchases, as_of=now.date())


async def signal(
    session: AsyncSession, kind: str, customer: str, *, store: str, at: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO customer_signal (kind, source_id, customer_id, store_id, occurred_at) "
            "VALUES (:k, :s, :c, :st, :at)"
        ),
        {"k": kind, "s": f"ev{next(_ids)}", "c": customer, "st": store, "at": at},
    )


async def link(
    session: AsyncSession,
    customer: str,
    *,
    store: str,
    referrer: str | None = None,
    competitor: bool = False,
) -> None:
    await session.execute(
        text(
            "INSERT INTO customer_link (customer_id, store_id, referrer_id, uses_competitor, "
            "version) VALUES (:c, :s, :r, :u, 1)"
        ),
        {"c": customer, "s": store, "r": referrer, "u": competitor},
    )


async def scores(session: AsyncSession, store: str) -> dict[str, dict[str, object]]:
    rows = await session.execute(
        text("SELECT * FROM customer_score WHERE store_id = :s"), {"s": store}
    )
    return {r.customer_id: dict(r._mapping) for r in rows}


async def run(
    session: AsyncSession, customers: list[str], *, now: datetime, cause: str = "purchase"
) -> list[classify.Classified]:
    return await classify.classify_customers(session, customer_ids=customers, now=now, cause=cause)


async def test_lifecycle_turns_the_year_at_the_stores_midnight(session: AsyncSession) -> None:
    store = "life-year"
    new_year = datetime(2026, 1, 1, tzinfo=SHANGHAI)
    last_second = new_year - timedelta(seconds=1)  # 31 Dec, 23:59:59 in Shanghai (15:59:59 UTC)
    now = new_year + timedelta(days=9)
    await buy(
        session,
        [bought("dec31", last_second, store=store), bought("jan1", new_year, store=store)],
        now=now,
    )
    await run(session, ["dec31", "jan1"], now=now)
    got = await scores(session, store)
    assert got["jan1"]["lifecycle"] == "new_this_year"
    assert got["dec31"]["lifecycle"] == "in_service_not_bought"  # in UTC both are 2025
    # The same first second of the year, seen a second before the year turns locally.
    await run(session, ["jan1"], now=new_year - timedelta(seconds=1))
    assert (await scores(session, store))["dec31"]["lifecycle"] == "in_service_not_bought"


async def test_stopped_only_when_supply_ran_out_more_than_30_days_ago(
    session: AsyncSession,
) -> None:
    store = "life-stop"
    today = date(2026, 6, 15)
    now = local(today, 20)
    # Bought in the same year (not new: a first purchase the year before), 30 days of supply.
    first = local(date(2025, 5, 1))
    await buy(
        session,
        [
            bought("c30", first, store=store),
            bought("c31", first, store=store),
            bought("c30", local(today - timedelta(days=60)), store=store),
            bought("c31", local(today - timedelta(days=61)), store=store),
            # First bought this year, but ran out long ago: stopped comes first.
            bought("new_stopped", local(date(2026, 1, 2)), store=store),
        ],
        now=now,
    )
    got = await scores(session, store)
    assert today - got["c30"]["supply_runs_out_on"] == timedelta(days=30)
    assert today - got["c31"]["supply_runs_out_on"] == timedelta(days=31)
    await run(session, ["c30", "c31", "new_stopped"], now=now)
    got = await scores(session, store)
    assert got["c30"]["lifecycle"] == "active_second_line"
    assert got["c31"]["lifecycle"] == "stopped"
    assert got["new_stopped"]["lifecycle"] == "stopped"


async def test_lost_after_730_days_without_a_purchase(session: AsyncSession) -> None:
    store = "life-lost"
    today = date(2026, 6, 15)
    now = local(today, 23)
    # Supply for years: only the days without a purchase decide.
    await buy(
        session,
        [
            bought("d729", local(today - timedelta(days=729), 1), store=store, supply_days=900),
            bought("d730", local(today - timedelta(days=730), 23), store=store, supply_days=900),
        ],
        now=now,
    )
    await run(session, ["d729", "d730"], now=now)
    got = await scores(session, store)
    assert got["d729"]["lifecycle"] == "in_service_not_bought"
    assert got["d730"]["lifecycle"] == "lost"


async def test_active_core_needs_a_member_event_this_local_year(session: AsyncSession) -> None:
    store = "life-core"
    now = local(date(2026, 3, 10))
    before = local(date(2025, 11, 1))
    this_year = local(date(2026, 3, 1))
    purchases = [
        bought(c, at, store=store) for c in ("core", "second") for at in (before, this_year)
    ]
    await buy(session, purchases, now=now)
    await signal(session, "attended", "core", store=store, at=datetime(2026, 1, 1, tzinfo=SHANGHAI))
    # A second before the local year began: last year's event.
    await signal(
        session,
        "attended",
        "second",
        store=store,
        at=datetime(2026, 1, 1, tzinfo=SHANGHAI) - timedelta(seconds=1),
    )
    await run(session, ["core", "second"], now=now)
    got = await scores(session, store)
    assert got["core"]["lifecycle"] == "active_core"
    assert got["second"]["lifecycle"] == "active_second_line"


async def test_ladder_levels_and_the_managers_floor(session: AsyncSession) -> None:
    store = "ladder"
    now = local(date(2026, 6, 15))
    recent = now - timedelta(days=10)
    purchases = [
        bought("zero", recent, store=store),
        bought("rep", recent - timedelta(days=40), store=store),
        bought("rep", recent, store=store),
        bought("went", recent, store=store),
        bought("went_old", recent, store=store),
        bought("guest", recent, store=store),
        bought("referrer", recent, store=store),
        bought("iron", recent, store=store),
        bought("referred1", recent, store=store),
        *[bought(f"r{i}", recent, store=store) for i in range(3)],
    ]
    await buy(session, purchases, now=now)
    await signal(session, "attended", "went", store=store, at=now - timedelta(days=300))
    await signal(session, "attended", "went_old", store=store, at=now - timedelta(days=370))
    await signal(session, "guest_brought", "guest", store=store, at=now - timedelta(days=900))
    await link(session, "referred1", store=store, referrer="referrer")
    await link(session, "never_bought", store=store, referrer="zero")
    for i in range(3):
        await link(session, f"r{i}", store=store, referrer="iron")
    everyone = ["zero", "rep", "went", "went_old", "guest", "referrer", "iron", "referred1"]
    changed = await run(session, everyone, now=now)
    got = await scores(session, store)
    assert {c: got[c]["ladder_level"] for c in everyone} == {
        "zero": "0",  # its referred file never bought
        "rep": "E",
        "went": "D",
        "went_old": "0",  # the event was more than 12 months ago
        "guest": "C",  # a guest brought counts however long ago
        "referrer": "B",
        "iron": "A",
        "referred1": "0",
    }
    assert got["iron"]["ladder_score"] == 100 and got["rep"]["ladder_score"] == 20
    assert {c.customer_id for c in changed} == set(everyone)
    # The manager's floor holds though nothing else does, and lifts nothing above it.
    await session.execute(
        text("UPDATE customer_score SET ladder_floor = 'A' WHERE customer_id = 'zero'")
    )
    changed = await run(session, ["zero", "iron"], now=now, cause=history.FLOOR_SET)
    assert [(c.customer_id, c.previous_ladder_level, c.ladder_level) for c in changed] == [
        ("zero", "0", "A")
    ]
    entries = await session.execute(
        text(
            "SELECT field, previous, value, cause FROM score_history "
            "WHERE customer_id = 'zero' ORDER BY id"
        )
    )
    assert entries.all()[-1] == ("ladder_level", "0", "A", "floor_set")


async def test_iron_core_counts_referred_first_purchases_within_12_months(
    session: AsyncSession,
) -> None:
    store = "ladder-a"
    now = local(date(2026, 6, 15))
    window = timedelta(days=365)
    purchases = [bought("ref", now - timedelta(days=5), store=store)]
    purchases += [bought(f"n{i}", now - timedelta(days=5 + i), store=store) for i in range(2)]
    # The third referred buyer's first purchase is 13 months back.
    purchases.append(bought("n_old", now - window - timedelta(days=31), store=store))
    purchases.append(bought("n_old", now - timedelta(days=3), store=store))
    await buy(session, purchases, now=now)
    for c in ("n0", "n1", "n_old"):
        await link(session, c, store=store, referrer="ref")
    await run(session, ["ref"], now=now)
    assert (await scores(session, store))["ref"]["ladder_level"] == "B"


async def test_loyalty_counts_repeat_purchases_in_24_months(session: AsyncSession) -> None:
    store = "loyalty"
    now = local(date(2026, 6, 15))
    month = timedelta(days=30)
    purchases = [
        # First purchase inside the window: four purchases are three repeats.
        *[bought("four", now - i * month, store=store) for i in range(4)],
        *[bought("three", now - i * month, store=store) for i in range(3)],
        # First purchase outside the window: the three inside are all repeats.
        bought("old_first", now - 30 * month, store=store),
        *[bought("old_first", now - i * month, store=store) for i in range(3)],
        bought("competitor", now - month, store=store),
    ]
    await buy(session, purchases, now=now)
    await link(session, "competitor", store=store, competitor=True)
    await link(session, "four", store=store, competitor=True)
    await run(session, ["four", "three", "old_first", "competitor"], now=now)
    got = await scores(session, store)
    assert got["four"]["loyalty"] == "loyal"  # loyal before switcher
    assert got["three"]["loyalty"] == "floating"
    assert got["old_first"]["loyalty"] == "loyal"
    assert got["competitor"]["loyalty"] == "switcher"


async def test_rfm_quintiles_share_ties_and_name_segments(session: AsyncSession) -> None:
    store = "rfm"
    now = local(date(2026, 6, 15))
    # Ten customers, last purchase 1..10 days ago, spend 10..100: distinct values.
    purchases = [
        bought(f"c{i}", now - timedelta(days=i), store=store, total=f"{10 * (11 - i)}.00")
        for i in range(1, 11)
    ]
    # Ten more who tie on everything.
    purchases += [
        bought(f"t{i}", now - timedelta(days=20), store=store, total="5.00") for i in range(10)
    ]
    await buy(session, purchases, now=now)
    ids = [p.customer_id for p in purchases]
    await classify.classify_store(session, store_id=store, now=now, cause=history.RECOMPUTE)
    got = await scores(session, store)
    # Ties share one score, however many of them.
    assert len({(got[t]["rfm_r"], got[t]["rfm_f"], got[t]["rfm_m"]) for t in ids[10:]}) == 1
    assert got["t0"]["rfm_r"] == 1 and got["t0"]["rfm_m"] == 1
    # Everyone bought once: frequency ties across the store.
    assert {got[c]["rfm_f"] for c in ids} == {1}
    # The most recent and biggest spenders are in the top quintile, and scores never fall as
    # the value rises.
    assert got["c1"]["rfm_r"] == 5 and got["c1"]["rfm_m"] == 5
    ordered = [got[f"c{i}"]["rfm_r"] for i in range(10, 0, -1)]
    assert ordered == sorted(ordered)
    assert got["c1"]["rfm_segment"] == rfm.segment_of(5, 1) == "new"
    assert got["t0"]["rfm_segment"] == "lost"


async def test_a_store_of_fewer_than_five_buyers_has_no_rfm_yet(session: AsyncSession) -> None:
    """With percentile boundaries over one buyer, a store's first customer, who has just
    bought, exceeded none of them and read ``lost``."""
    store = "rfm-small"
    now = local(date(2026, 6, 15))
    first = [bought(f"s{i}", now - timedelta(days=i + 1), store=store) for i in range(4)]
    await buy(session, first, now=now)
    await run(session, [p.customer_id for p in first], now=now)
    got = await scores(session, store)
    assert all(got[p.customer_id]["rfm_segment"] is None for p in first)
    assert all(got[p.customer_id]["rfm_r"] is None for p in first)
    fifth = bought("s4", now, store=store)
    await buy(session, [fifth], now=now)
    await run(session, [fifth.customer_id], now=now)
    got = await scores(session, store)
    assert got["s4"]["rfm_r"] == 5 and got["s4"]["rfm_segment"] is not None
    # The store's day scores the four classified before it had quintiles.
    await classify.classify_store(session, store_id=store, now=now, cause=history.AGEING)
    got = await scores(session, store)
    assert got["s0"]["rfm_r"] == 4 and got["s3"]["rfm_r"] == 1
    assert all(got[p.customer_id]["rfm_segment"] is not None for p in first)


async def test_a_batch_scores_against_the_kept_boundaries(session: AsyncSession) -> None:
    store = "rfm-kept"
    now = local(date(2026, 6, 15))
    purchases = [
        bought(f"k{i}", now - timedelta(days=i), store=store, total=f"{10 * i}.00")
        for i in range(1, 21)
    ]
    await buy(session, purchases, now=now)
    await classify.classify_store(session, store_id=store, now=now, cause=history.RECOMPUTE)
    bound = (
        await session.execute(
            text("SELECT buyers, new_buyers FROM rfm_bound WHERE store_id = :s"), {"s": store}
        )
    ).one()
    assert tuple(bound) == (20, 0)
    # Four new buyers: a fifth of the store, under a quarter: scored against the kept bounds.
    newcomers = [bought(f"n{i}", now, store=store, total="1000.00") for i in range(4)]
    await buy(session, newcomers, now=now)
    await run(session, [p.customer_id for p in newcomers], now=now)
    bound = (
        await session.execute(
            text("SELECT buyers, new_buyers FROM rfm_bound WHERE store_id = :s"), {"s": store}
        )
    ).one()
    assert tuple(bound) == (20, 4)
    assert (await scores(session, store))["n0"]["rfm_m"] == 5
    # Two more make it a quarter: the boundaries are computed again from all 26.
    more = [bought(f"m{i}", now, store=store) for i in range(2)]
    await buy(session, more, now=now)
    await run(session, [p.customer_id for p in more], now=now)
    bound = (
        await session.execute(
            text("SELECT buyers, new_buyers FROM rfm_bound WHERE store_id = :s"), {"s": store}
        )
    ).one()
    assert tuple(bound) == (26, 0)


async def test_unchanged_classification_publishes_nothing(session: AsyncSession) -> None:
    store = "quiet"
    now = local(date(2026, 6, 15))
    await buy(session, [bought("q", now - timedelta(days=1), store=store)], now=now)
    first = await run(session, ["q"], now=now)
    assert [(c.ladder_level, c.lifecycle) for c in first] == [("0", "new_this_year")]
    staged = "SELECT count(*) FROM outbox_event WHERE key = 'q'"
    before = (await session.execute(text(staged))).scalar_one()
    assert await run(session, ["q"], now=now) == []
    assert (await session.execute(text(staged))).scalar_one() == before


async def _rows_updated(session: AsyncSession) -> int:
    """customer_score's row versions this transaction has written by UPDATE so far."""
    updated = await session.execute(
        text("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'customer_score'")
    )
    return int(updated.scalar_one())


async def test_a_store_classified_again_writes_only_the_rows_that_changed(
    session: AsyncSession,
) -> None:
    store = "rewrite"
    day = local(date(2026, 6, 15))
    await buy(
        session,
        [bought(f"rw{n}", day - timedelta(days=n + 1), store=store) for n in range(6)]
        + [bought("rw-out", day - timedelta(days=30), store=store, supply_days=1)],
        now=day,
    )
    await classify.classify_store(session, store_id=store, now=day, cause="ageing")
    # The next day nothing about them changes but the date: no row is written.
    before = await _rows_updated(session)
    assert (
        await classify.classify_store(
            session, store_id=store, now=day + timedelta(days=1), cause="ageing"
        )
        == 0
    )
    assert await _rows_updated(session) == before
    # rw-out's supply has run out for more than 30 days two days on: its row alone is written.
    assert (
        await classify.classify_store(
            session, store_id=store, now=day + timedelta(days=2), cause="ageing"
        )
        == 1
    )
    assert await _rows_updated(session) == before + 1
    got = await scores(session, store)
    assert got["rw-out"]["lifecycle"] == "stopped"
    assert got["rw-out"]["classified_on"] == (day + timedelta(days=2)).date()
    assert {got[f"rw{n}"]["classified_on"] for n in range(6)} == {day.date()}


def test_thresholds_are_the_domains() -> None:
    assert DEFAULT_THRESHOLDS.lost_after_days == 730
    assert DEFAULT_THRESHOLDS.stopped_after_days == 30
