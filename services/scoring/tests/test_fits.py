"""Stored fits on a real PostgreSQL: the SQL summary of a store's purchase facts, the pooled
fallback, the scheduled refit by one leader, and a customer's predictions from the newest fit."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.cdnow_files import CALIBRATION_END, HOLDOUT_END, sample_transactions
from crm_devstack.fixtures import migrated_database
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.driver import driver_connection
from scoring_service.scores import fits, fits_scheduled, predictions
from scoring_service.scores.btyd import bgnbd, clv, gamma_gamma
from scoring_service.scores.btyd.summary import Summary, summarise

_COLUMNS = ["purchase_id", "store_id", "customer_id", "purchased_at", "purchased_on", "timezone",
            "total", "supply_days"]  # fmt: skip
Fact = tuple[str, str, str, datetime, date, str, Decimal, int]


def fact(purchase: str, store: str, customer: str, on: date, amount: float) -> Fact:
    at = datetime.combine(on, time(12), tzinfo=UTC)
    return (purchase, store, customer, at, on, "UTC", Decimal(f"{amount:.2f}"), 30)


def sample_facts(store: str) -> list[Fact]:
    """The CDNOW sample as one store's purchase facts (customer ``{store}-{sample id}``)."""
    customers, days, dollars = sample_transactions()
    return [
        fact(f"{store}-p{n}", store, f"{store}-{c}", date.fromisoformat(d), amount)
        for n, (c, d, amount) in enumerate(zip(customers, days, dollars, strict=True))
    ]


def small_store_facts(store: str, *, customers: int, repeat: int) -> list[Fact]:
    """``customers`` who bought once on 1997-02-01, ``repeat`` of them again on 1997-05-01."""
    days = [date(1997, 2, 1), date(1997, 5, 1)]
    return [
        fact(f"{store}-{c}-{k}", store, f"{store}-{c}", on, 20.0)
        for c in range(customers)
        for k, on in enumerate(days[: 2 if c < repeat else 1])
    ]


async def insert(session: AsyncSession, facts: list[Fact]) -> None:
    db = await driver_connection(session)
    await db.copy_records_to_table("purchase_fact", records=facts, columns=_COLUMNS)


async def newest_id(session: AsyncSession, store_id: str) -> str | None:
    newest = await fits.newest_fit(session, store_id=store_id)
    return newest.id if newest else None


def rows_of(summary: Summary) -> list[tuple[float, float, float, float]]:
    """The summary's customers as sorted rows (SQL returns them in no particular order)."""
    columns = (summary.frequency, summary.recency, summary.age, np.round(summary.monetary, 6))
    return sorted(zip(*(c.tolist() for c in columns), strict=True))


async def test_the_sql_summary_of_a_store_is_the_transaction_summary(
    session: AsyncSession,
) -> None:
    await insert(session, sample_facts("cd1"))
    await insert(session, small_store_facts("other", customers=5, repeat=5))
    stored = await fits.summarise(
        session, store_id="cd1", calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END
    )
    customers, days, dollars = sample_transactions()
    expected = summarise(
        customers=customers, days=days, amounts=dollars, calibration_end=CALIBRATION_END
    )
    assert rows_of(stored.summary) == rows_of(expected)
    # Purchase days after the calibration end, counted independently from the file.
    later = {
        (c, d) for c, d in zip(customers, days, strict=True) if "1997-09-30" < d <= "1998-06-30"
    }
    assert stored.holdout_days.sum() == len(later)
    # In days too: the same facts, another unit.
    in_days = await fits.summarise(
        session, store_id="cd1", calibration_end=CALIBRATION_END, time_unit="day"
    )
    assert np.allclose(np.sort(in_days.summary.age), np.sort(expected.age) * 7)


async def refund_wholly(session: AsyncSession, purchase_ids: list[str]) -> None:
    """The facts as a full refund leaves them (scores/refund_facts.py): nothing left."""
    db = await driver_connection(session)
    await db.execute(
        "UPDATE purchase_fact SET total = 0, supply_days = 0, wholly_refunded = true"
        " WHERE purchase_id = ANY($1::text[])",
        purchase_ids,
    )


async def test_wholly_refunded_purchases_are_no_transactions_of_the_summary(
    session: AsyncSession,
) -> None:
    facts = sample_facts("cdr")
    await insert(session, facts)
    # Every seventh purchase returned in full, every eleventh (not seventh) in part: a returned
    # sale is no purchase for frequency or recency, a partly refunded one still is, at its net.
    returned = {f[0] for n, f in enumerate(facts) if n % 7 == 3}
    partly = {
        f[0]: (f[6] / 2).quantize(Decimal("0.01"), ROUND_DOWN)
        for n, f in enumerate(facts)
        if n % 11 == 5 and f[0] not in returned
    }
    await refund_wholly(session, sorted(returned))
    db = await driver_connection(session)
    await db.execute(
        "UPDATE purchase_fact AS f SET total = p.total FROM unnest($1::text[], $2::numeric[])"
        " AS p(purchase_id, total) WHERE f.purchase_id = p.purchase_id",
        list(partly),
        list(partly.values()),
    )
    kept = [f for f in facts if f[0] not in returned]
    customers = [f[2] for f in kept]
    days = [f[4].isoformat() for f in kept]
    amounts = [float(partly.get(f[0], f[6])) for f in kept]
    stored = await fits.summarise(
        session, store_id="cdr", calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END
    )
    expected = summarise(
        customers=customers, days=days, amounts=amounts, calibration_end=CALIBRATION_END
    )
    assert rows_of(stored.summary) == rows_of(expected)
    # Holdout days of the customers a purchase still made by the calibration end.
    made = {c for c, d in zip(customers, days, strict=True) if d <= "1997-09-30"}
    later = {(c, d) for c, d in zip(customers, days, strict=True) if d > "1997-09-30" and c in made}
    assert stored.holdout_days.sum() == len(later)


async def test_a_store_with_enough_repeat_customers_gets_its_own_fit(
    session: AsyncSession,
) -> None:
    await insert(session, sample_facts("cd2"))
    fit = await fits.fit_store(
        session, store_id="cd2", calibration_end=CALIBRATION_END, min_repeat_customers=200
    )
    assert fits.scope_of(fit) == "store" and fit.store_id == "cd2"
    assert (fit.customers, fit.repeat_customers) == (2357, 946)
    assert round(fit.r, 3) == 0.243 and round(fit.a, 3) == 0.793
    assert fit.p is not None and round(fit.p, 2) == 6.25
    assert round(fit.bgnbd_log_likelihood, 1) == -9582.4
    assert fit.fitted_at is not None


async def test_a_small_store_falls_back_to_the_pooled_fit(session: AsyncSession) -> None:
    await insert(session, sample_facts("cd3"))
    await insert(session, small_store_facts("tiny", customers=30, repeat=12))
    fit = await fits.fit_store(
        session, store_id="tiny", calibration_end=CALIBRATION_END, min_repeat_customers=200
    )
    assert fits.scope_of(fit) == "pooled" and fit.store_id is None
    assert (fit.customers, fit.repeat_customers) == (2357 + 30, 946 + 12)
    assert await newest_id(session, "tiny") == fit.id
    # The big store has no fit of its own yet: it too reads the pooled one, until it has one.
    assert await newest_id(session, "cd3") == fit.id
    own = await fits.fit_store(
        session, store_id="cd3", calibration_end=CALIBRATION_END, min_repeat_customers=200
    )
    assert await newest_id(session, "cd3") == own.id


async def test_too_little_data_even_pooled_says_how_much_is_needed(session: AsyncSession) -> None:
    await insert(session, small_store_facts("few", customers=40, repeat=7))
    with pytest.raises(fits.TooLittleData) as refused:
        await fits.fit_store(
            session, store_id="few", calibration_end=CALIBRATION_END, min_repeat_customers=200
        )
    assert (refused.value.needed, refused.value.found) == (200, 7)
    assert "needs at least 200 customers with a repeat purchase" in refused.value.detail


async def test_a_fit_of_an_older_period_does_not_replace_the_latest(session: AsyncSession) -> None:
    await insert(session, sample_facts("cd4"))
    latest = await fits.fit_store(
        session, store_id="cd4", calibration_end=HOLDOUT_END, min_repeat_customers=200
    )
    await fits.fit_store(
        session, store_id="cd4", calibration_end=CALIBRATION_END, min_repeat_customers=200
    )
    assert await newest_id(session, "cd4") == latest.id


async def test_predictions_from_the_stores_fit(session: AsyncSession) -> None:
    await insert(session, sample_facts("cd5"))
    fit = await fits.fit_store(
        session, store_id="cd5", calibration_end=CALIBRATION_END, min_repeat_customers=200
    )
    today = CALIBRATION_END + timedelta(days=10)
    # Customer 1 of the sample: purchases on 1997-01-01, 01-18 and 08-02 (two CDs and one).
    got = await predictions.predict(
        session, store_id="cd5", customer_id="cd5-1", today=today, monthly_discount_rate=0.01
    )
    customers, days, dollars = sample_transactions()
    own = summarise(
        customers=[c for c in customers if c == 1],
        days=[d for c, d in zip(customers, days, strict=True) if c == 1],
        amounts=[a for c, a in zip(customers, dollars, strict=True) if c == 1],
        calibration_end=today,
    )
    model = bgnbd.BgNbd(fit.r, fit.alpha, fit.a, fit.b, 0.0)
    assert fit.p is not None and fit.q is not None and fit.v is not None
    spending = gamma_gamma.GammaGamma(fit.p, fit.q, fit.v, 0.0)
    assert got.p_alive == round(float(bgnbd.p_alive(model, own)[0]), 4)
    assert got.expected_purchases_90d == round(
        float(bgnbd.expected_purchases(model, own, 90 / 7)[0]), 4
    )
    value = gamma_gamma.expected_order_value(spending, own)[0]
    assert got.expected_order_value == Decimal(f"{value:.2f}")
    lifetime = clv.lifetime_value(model, spending, own, time_unit="week")[0]
    assert got.clv_12m == Decimal(f"{lifetime:.2f}")
    assert got.model is not None and got.model.scope == "store"
    assert got.model.calibration_end == CALIBRATION_END
    # Purchases after "today" are not known yet: as of the customer's first day, one purchase.
    first = await predictions.predict(
        session,
        store_id="cd5",
        customer_id="cd5-1",
        today=date(1997, 1, 1),
        monthly_discount_rate=0.01,
    )
    assert first.p_alive == 1.0


async def test_a_wholly_refunded_purchase_is_not_in_the_customers_predictions(
    session: AsyncSession,
) -> None:
    await insert(session, sample_facts("cdq"))
    await fits.fit_store(
        session, store_id="cdq", calibration_end=CALIBRATION_END, min_repeat_customers=200
    )
    today = CALIBRATION_END + timedelta(days=10)

    async def predicted() -> object:
        return await predictions.predict(
            session, store_id="cdq", customer_id="cdq-1", today=today, monthly_discount_rate=0.01
        )

    before = await predicted()
    # Customer 1 bought on 1997-01-01, 01-18 and 08-02; a sale on 09-20 returned in full is no
    # fourth purchase and no later last one.
    await insert(session, [fact("cdq-returned", "cdq", "cdq-1", date(1997, 9, 20), 80.0)])
    await refund_wholly(session, ["cdq-returned"])
    assert await predicted() == before


async def test_no_predictions_before_any_fit(session: AsyncSession) -> None:
    await insert(session, small_store_facts("nofit", customers=3, repeat=1))
    got = await predictions.predict(
        session,
        store_id="nofit",
        customer_id="nofit-0",
        today=date(1997, 6, 1),
        monthly_discount_rate=0.01,
    )
    assert got == predictions.NO_PREDICTIONS


@pytest.fixture(scope="module")
async def committed(stack: LocalStack) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions that commit, on a database of their own (the refit commits its fits)."""
    engine = make_engine(migrated_database(stack, "scoring_service"), pool_size=4)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_the_scheduled_refit_keeps_the_pool_and_the_stores_with_enough(
    committed: async_sessionmaker[AsyncSession],
) -> None:
    async with committed() as session, session.begin():
        await insert(session, sample_facts("big"))
        await insert(session, small_store_facts("small", customers=30, repeat=12))
    assert await fits_scheduled.refit_due(committed, interval=86_400)
    kept = await fits_scheduled.refit_as_leader(
        committed, calibration_end=CALIBRATION_END, min_repeat_customers=200
    )
    assert kept is not None and set(kept) == {None, "big"}
    async with committed() as session:
        stored = (
            await session.execute(
                text("SELECT store_id, customers, repeat_customers FROM model_fit")
            )
        ).all()
        assert sorted(stored, key=str) == sorted([(None, 2387, 958), ("big", 2357, 946)], key=str)
        small = await fits.newest_fit(session, store_id="small")
        assert small is not None and fits.scope_of(small) == "pooled"
    # Just refitted: not due again until the interval has passed.
    assert not await fits_scheduled.refit_due(committed, interval=86_400)
    assert await fits_scheduled.refit_due(committed, interval=0)


async def test_only_one_replica_refits_at_a_time(
    committed: async_sessionmaker[AsyncSession],
) -> None:
    async with committed() as other_leader:
        await other_leader.execute(
            text("SELECT pg_advisory_lock(:key)"), {"key": fits_scheduled.MODEL_REFIT_LOCK}
        )
        try:
            assert (
                await fits_scheduled.refit_as_leader(
                    committed, calibration_end=CALIBRATION_END, min_repeat_customers=200
                )
                is None
            )
        finally:
            await other_leader.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": fits_scheduled.MODEL_REFIT_LOCK}
            )
