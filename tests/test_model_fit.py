"""``POST /stores/{id}/models/fit`` and the score's predictions, through the gateway: a store
whose purchases are the CDNOW sample (published on the real broker as the customer service
would) is fitted and checked on its holdout, and a small store's customers are predicted from
the pooled fit."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from bench.cdnow_files import CALIBRATION_END, HOLDOUT_END, sample_transactions
from crm_devstack.fixtures import eventually, session_on
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.envelope import EventEnvelope, Topics
from scoring_service.scores import fits_scheduled
from scoring_service.scores.btyd import bgnbd
from scoring_service.scores.btyd.summary import in_units, summarise
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_product,
    create_store,
    days_ago,
    record_purchase,
    score_with_purchases,
    sign_in,
)


def purchase_event(store_id: str, n: int, customer: int, day: str, dollars: float) -> EventEnvelope:
    """A row of the CDNOW sample as the ``purchase.recorded`` the customer service publishes."""
    at = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return EventEnvelope(
        type="purchase.recorded",
        occurred_at=at,
        store_id=store_id,
        customer_id=f"{store_id}-c{customer}",
        payload={
            "purchase_id": f"{store_id}-p{n}",
            "purchased_at": at.isoformat(),
            "purchased_on": day,
            "timezone": "UTC",
            "staff_id": None,
            "member_event_id": None,
            "total": f"{dollars:.2f}",
            "lines": [
                {
                    "sku": "CD",
                    "category": "music",
                    "qty": 1,
                    "unit_price": f"{dollars:.2f}",
                    "amount": f"{dollars:.2f}",
                    "days_per_unit": 30,
                }
            ],
        },
    )


@pytest.fixture(scope="module")
async def admin(stack: LocalStack, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.url("gateway") + "/api/v1",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=60,
    ) as client:
        yield client


@pytest.fixture(scope="module")
async def cdnow_store(stack: LocalStack, admin: httpx.AsyncClient) -> str:
    """A store whose customers bought exactly what the CDNOW sample's did, scored."""
    store_id = str((await create_store(admin, timezone="UTC"))["id"])
    customers, days, dollars = sample_transactions()
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    await producer.start()
    try:
        for n, row in enumerate(zip(customers, days, dollars, strict=True)):
            event = purchase_event(store_id, n, *row)
            await producer.send(Topics.PURCHASES, value=event.to_bytes(), key=event.key)
        await producer.flush()
    finally:
        await producer.stop()

    async def all_scored() -> bool:
        async with session_on(stack.database_url("scoring")) as session:
            count = await session.execute(
                text("SELECT count(*) FROM purchase_fact WHERE store_id = :s"), {"s": store_id}
            )
            return count.scalar_one() == len(customers)

    await eventually(all_scored, timeout=180, interval=0.5)
    return store_id


def sig(value: float) -> float:
    return float(f"{value:.2e}")


async def test_a_fit_reproduces_the_published_estimates_and_checks_the_holdout(
    admin: httpx.AsyncClient, cdnow_store: str
) -> None:
    response = await admin.post(
        f"/stores/{cdnow_store}/models/fit",
        json={"calibration_end": str(CALIBRATION_END), "holdout_end": str(HOLDOUT_END)},
    )
    assert response.status_code == 200, response.text
    fit = response.json()
    assert fit["time_unit"] == "week" and fit["scope"] == "store"
    assert (fit["customers"], fit["repeat_customers"]) == (2357, 946)
    bg = fit["bgnbd"]
    assert (sig(bg["r"]), sig(bg["alpha"]), sig(bg["a"]), sig(bg["b"])) == (
        0.243,
        4.41,
        0.793,
        2.43,
    )
    assert round(bg["log_likelihood"], 1) == -9582.4
    gg = fit["gamma_gamma"]
    assert (sig(gg["p"]), sig(gg["q"]), sig(gg["v"])) == (6.25, 3.74, 15.4)
    # The holdout, computed here from the file: purchase days after the calibration end...
    customers, days, dollars = sample_transactions()
    later = {(c, d) for c, d in zip(customers, days, strict=True) if str(CALIBRATION_END) < d}
    assert fit["holdout"]["actual_repeat"] == len(later)
    # ...against the fitted model's expectation for the same customers over the 39 weeks.
    summary = summarise(
        customers=customers, days=days, amounts=dollars, calibration_end=CALIBRATION_END
    )
    model = bgnbd.BgNbd(bg["r"], bg["alpha"], bg["a"], bg["b"], bg["log_likelihood"])
    weeks = float(in_units((HOLDOUT_END - CALIBRATION_END).days, "week"))
    expected = float(np.sum(bgnbd.expected_purchases(model, summary, weeks)))
    assert fit["holdout"]["predicted_repeat"] == pytest.approx(expected, rel=1e-9)


async def test_a_fit_in_days(admin: httpx.AsyncClient, cdnow_store: str) -> None:
    response = await admin.post(
        f"/stores/{cdnow_store}/models/fit",
        json={"calibration_end": str(CALIBRATION_END), "time_unit": "day"},
    )
    assert response.status_code == 200, response.text
    fit = response.json()
    assert fit["time_unit"] == "day" and "holdout" not in fit
    # The same customers in days: the rate's scale is seven times the weekly one.
    assert sig(fit["bgnbd"]["alpha"] / 7) == 4.41 and sig(fit["bgnbd"]["r"]) == 0.243


async def test_only_the_stores_manager_and_head_office_fit_it(
    admin: httpx.AsyncClient, cdnow_store: str
) -> None:
    body = {"calibration_end": str(CALIBRATION_END)}
    other_store = await create_store(admin)
    callers: dict[str, Any] = {}
    for name, role, store in (
        ("manager", "store_manager", cdnow_store),
        ("staff", "staff", cdnow_store),
        ("other_manager", "store_manager", other_store["id"]),
    ):
        account = await create_account(admin, role=role, store_id=store)
        callers[name] = (await sign_in(admin, account))["access_token"]
    async with client_as(admin, token=callers["manager"]) as manager:
        response = await manager.post(f"/stores/{cdnow_store}/models/fit", json=body)
        assert response.status_code == 200, response.text
        assert sig(response.json()["bgnbd"]["r"]) == 0.243
    async with client_as(admin, token=callers["staff"]) as staff:
        response = await staff.post(f"/stores/{cdnow_store}/models/fit", json=body)
        assert response.status_code == 403, response.text
    async with client_as(admin, token=callers["other_manager"]) as outsider:
        response = await outsider.post(f"/stores/{cdnow_store}/models/fit", json=body)
        # Another store's models: as unknown as a store that does not exist.
        assert response.status_code == 404, response.text
    async with httpx.AsyncClient(base_url=str(admin.base_url)) as anonymous:
        response = await anonymous.post(f"/stores/{cdnow_store}/models/fit", json=body)
        assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"calibration_end": "1997-09-30", "holdout_end": "1997-09-30"}, "holdout_end"),
        ({"calibration_end": "1997-09-30", "holdout_end": "1997-06-30"}, "holdout_end"),
        ({"calibration_end": "future"}, "calibration_end"),
        ({"calibration_end": "1997-09-30", "holdout_end": "future"}, "holdout_end"),
        ({"calibration_end": "1997-09-30", "time_unit": "month"}, "time_unit"),
        ({"calibration_end": "not a date"}, "calibration_end"),
        ({}, "calibration_end"),
        ({"calibration_end": "1997-09-30", "holdout": "1998-06-30"}, "holdout"),
    ],
)
async def test_bad_dates_and_fields_are_refused_naming_the_field(
    admin: httpx.AsyncClient, cdnow_store: str, body: dict[str, str], field: str
) -> None:
    # Two days ahead is in the future in every time zone.
    future = str(date.today() + timedelta(days=2))
    body = {k: future if v == "future" else v for k, v in body.items()}
    response = await admin.post(f"/stores/{cdnow_store}/models/fit", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.fixture(scope="module")
async def small_store(admin: httpx.AsyncClient) -> dict[str, Any]:
    """A store of two customers, one of whom came back, recorded through the API."""
    store = await create_store(admin)
    product = await create_product(admin)
    once = await create_customer(admin, store_id=store["id"])
    twice = await create_customer(admin, store_id=store["id"])
    await record_purchase(
        admin, customer_id=once["id"], sku=product["sku"], purchased_at=days_ago(40)
    )
    for ago in (60, 20):
        await record_purchase(
            admin, customer_id=twice["id"], sku=product["sku"], purchased_at=days_ago(ago)
        )
    await score_with_purchases(admin, once["id"], 1)
    await score_with_purchases(admin, twice["id"], 2)
    return {"store_id": store["id"], "once": once["id"], "twice": twice["id"]}


async def test_a_store_with_too_little_data_is_told_how_much_is_needed(
    admin: httpx.AsyncClient, small_store: dict[str, Any]
) -> None:
    response = await admin.post(
        f"/stores/{small_store['store_id']}/models/fit",
        json={"calibration_end": str(date.today() - timedelta(days=1))},
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert "needs at least 200 customers with a repeat purchase" in problem["detail"]
    assert "the store has 1" in problem["detail"]
    assert problem["errors"][0]["field"] == "calibration_end"


async def test_scores_predict_from_the_stores_fit_or_else_the_pooled_one(
    stack: LocalStack, admin: httpx.AsyncClient, cdnow_store: str, small_store: dict[str, Any]
) -> None:
    # What the daily refit does, run now: the CDNOW store has enough repeat customers for a
    # fit of its own, the small store has not and is predicted from the pool of every store.
    engine = make_engine(stack.database_url("scoring"), pool_size=2)
    try:
        kept = await fits_scheduled.refit_as_leader(
            make_sessionmaker(engine),
            calibration_end=date.today() - timedelta(days=1),
            min_repeat_customers=200,
        )
    finally:
        await engine.dispose()
    assert kept is not None and cdnow_store in kept and None in kept
    assert small_store["store_id"] not in kept

    async def predictions_of(customer_id: str) -> dict[str, Any]:
        response = await admin.get(f"/customers/{customer_id}/score")
        assert response.status_code == 200, response.text
        predictions: dict[str, Any] = response.json()["predictions"]
        return predictions

    twice = await predictions_of(small_store["twice"])
    assert twice["model"]["scope"] == "pooled"
    once = await predictions_of(small_store["once"])
    assert once["model"]["scope"] == "pooled"
    for got in (twice, once):
        assert 0 < got["p_alive"] <= 1 and got["expected_purchases_90d"] > 0
        assert float(got["expected_order_value"]) > 0 and float(got["clv_12m"]) > 0
    assert once["p_alive"] == 1.0  # never came back: cannot have dropped out (BG/NBD)
    # A CDNOW customer, last seen in 1998: predicted by its store's own fit, and long gone.
    customers, days, _ = sample_transactions()
    loyal = max(set(customers), key=customers.count)
    cdnow = await predictions_of(f"{cdnow_store}-c{loyal}")
    assert cdnow["model"]["scope"] == "store"
    assert cdnow["p_alive"] < 0.01 and cdnow["expected_purchases_90d"] < 0.01
