"""Consumption by month read from its read model (a summary per store and month) stays exact as
the facts change after a month was summarised: a later purchase, refunds, a merge through the
real consumer, and facts written straight into the table; periods cut mid-month read those days
from the facts; a store nobody reads has its marks folded by the scheduled job. And the periods
the data cannot answer: after the store's today, before the month of its first data; the
default twelve months begin with the data."""

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn, make_engine, make_sessionmaker
from scoring_service.analysis import month_summary_fold
from tests.builders import (
    analysis_answer,
    create_customer,
    create_staff,
    create_store,
    unique,
)

ZONE = ZoneInfo("Asia/Shanghai")
# From the store's first purchase: March is whole all the same.
SPRING = {"from": "2025-03-10", "to": "2025-04-30"}


@pytest.fixture
async def scoring_db(stack: LocalStack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("scoring")))
    try:
        yield conn
    finally:
        await conn.close()


async def _product(api: httpx.AsyncClient) -> str:
    body = {
        "sku": unique("SKU"),
        "name": "降压茶",
        "category": "茶饮",
        "unit_price": "100.00",
        "days_per_unit": 30,
    }
    response = await api.post("/products", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["sku"])


async def _buy(
    api: httpx.AsyncClient, customer: dict[str, Any], at: str, sku: str, qty: int, **kw: Any
) -> str:
    body = {"purchased_at": at, "items": [{"sku": sku, "qty": qty}], **kw}
    response = await api.post(f"/customers/{customer['id']}/purchases", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _refund(api: httpx.AsyncClient, purchase_id: str, **body: Any) -> None:
    response = await api.post(f"/purchases/{purchase_id}/refund", json={"reason": "other", **body})
    assert response.status_code == 201, response.text


def _groups(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(i["key"], i["customers"], i["purchases"], i["revenue"]) for i in answer["items"]]


async def test_months_stay_exact_after_a_later_purchase_refunds_a_merge_and_direct_facts(
    api: httpx.AsyncClient, scoring_db: asyncpg.Connection
) -> None:
    store = await create_store(api)
    staff = await create_staff(api, store_id=store["id"])
    sku = await _product(api)
    c1, c2, c3 = [await create_customer(api, store_id=store["id"]) for _ in range(3)]
    await _buy(api, c1, "2025-03-10T10:00:00+08:00", sku, 1, staff_id=staff["id"])
    p2 = await _buy(api, c2, "2025-03-12T10:00:00+08:00", sku, 2, staff_id=staff["id"])
    await _buy(api, c1, "2025-04-02T10:00:00+08:00", sku, 1)
    url = f"/stores/{store['id']}/analysis/consumption"

    async def answered(what: str = "month", **period: str) -> dict[str, Any] | None:
        response = await api.get(url, params={"by": what, **(period or SPRING)})
        return analysis_answer(response)

    async def by(what: str = "month", **period: str) -> list[tuple[Any, ...]]:
        answer = await answered(what, **period)
        assert answer is not None, "the store's data has not arrived"
        return _groups(answer)

    async def reaches(expected: list[tuple[Any, ...]], **period: str) -> None:
        async def seen() -> bool:
            answer = await answered(**period)
            return answer is not None and _groups(answer) == expected

        await eventually(seen, timeout=90)

    async def marked() -> int:
        found = await scoring_db.fetchval(
            "SELECT count(*) FROM analysis_dirty_month WHERE store_id = $1", store["id"]
        )
        return int(found)

    async def summary() -> list[tuple[Any, ...]]:
        rows = await scoring_db.fetch(
            "SELECT month, customers, purchases, revenue FROM analysis_store_month "
            "WHERE store_id = $1 ORDER BY month",
            store["id"],
        )
        return [
            (f"{r['month']:%Y-%m}", r["customers"], r["purchases"], str(r["revenue"])) for r in rows
        ]

    await reaches([("2025-03", 2, 2, "300.00"), ("2025-04", 1, 1, "100.00")])
    # The months are summarised and their marks taken: a read of whole months reads the summary.
    assert await marked() == 0
    assert await summary() == [("2025-03", 2, 2, "300.00"), ("2025-04", 1, 1, "100.00")]

    # A purchase in a month already summarised marks it; the next read recomputes it.
    p3 = await _buy(api, c3, "2025-03-20T10:00:00+08:00", sku, 1)

    async def one_marked() -> bool:
        return await marked() > 0

    await eventually(one_marked, timeout=90)
    await reaches([("2025-03", 3, 3, "400.00"), ("2025-04", 1, 1, "100.00")])
    assert await marked() == 0

    # A refund wholly: c3 has no purchase left in March; a partial one takes 100 of c2's 200.
    await _refund(api, p3)
    await reaches([("2025-03", 2, 2, "300.00"), ("2025-04", 1, 1, "100.00")])
    await _refund(api, p2, items=[{"sku": sku, "qty": 1}])
    await reaches([("2025-03", 2, 2, "200.00"), ("2025-04", 1, 1, "100.00")])

    # c2 merged into c1: its facts become c1's, so March has one customer of two purchases.
    version = (await api.get(f"/customers/{c1['id']}")).headers["ETag"]
    merged = await api.post(
        f"/customers/{c1['id']}/merge",
        json={"duplicate_id": c2["id"]},
        headers={"If-Match": version},
    )
    assert merged.status_code == 200, merged.text
    await reaches([("2025-03", 1, 2, "200.00"), ("2025-04", 1, 1, "100.00")])
    assert await summary() == [("2025-03", 1, 2, "200.00"), ("2025-04", 1, 1, "100.00")]
    # The other groupings, counted by key and customer, agree.
    assert await by("product") == [(sku, 1, 3, "300.00")]
    assert await by("staff") == [(staff["id"], 1, 2, "200.00"), (None, 1, 1, "100.00")]
    assert await by("tier") == [("inactive", 1, 3, "300.00")]

    # Periods the months cut are read from the facts by day: from the 11th, March holds only
    # what is left of c2's purchase; to 1 April, April holds nothing yet.
    assert await by(**{"from": "2025-03-11", "to": "2025-04-30"}) == [
        ("2025-03", 1, 1, "100.00"),
        ("2025-04", 1, 1, "100.00"),
    ]
    assert await by(**{"from": "2025-03-11", "to": "2025-04-01"}) == [("2025-03", 1, 1, "100.00")]
    assert await by(**{"from": "2025-03-10", "to": "2025-03-10"}) == [("2025-03", 1, 1, "100.00")]
    # A month whose days outside the period hold no fact is read whole from the summary.
    assert await by(**{"from": "2025-03-10", "to": "2025-04-25"}) == [
        ("2025-03", 1, 2, "200.00"),
        ("2025-04", 1, 1, "100.00"),
    ]

    # Facts written straight into the table by one INSERT … SELECT (as the benchmark loads
    # them) mark their months all the same.
    await scoring_db.execute(
        """
        INSERT INTO purchase_fact (purchase_id, store_id, customer_id, purchased_at,
                                   purchased_on, timezone, total)
        SELECT $1 || i, $2, $3 || i, timestamptz '2025-04-10 10:00+08', date '2025-04-10',
               'Asia/Shanghai', 50
        FROM generate_series(1, 3) AS g(i)
        """,
        unique("direct-p"),
        store["id"],
        unique("direct-c"),
    )
    assert await by() == [("2025-03", 1, 2, "200.00"), ("2025-04", 4, 4, "250.00")]
    assert await marked() == 0


def _store_today() -> date:
    return datetime.now(ZONE).date()


async def test_periods_the_data_cannot_answer_are_refused(
    api: httpx.AsyncClient, scoring_db: asyncpg.Connection
) -> None:
    store = await create_store(api)
    sku = await _product(api)
    customer = await create_customer(api, store_id=store["id"])
    today = _store_today()
    # Mid-month, so that the days before it in its month are a period's possible start.
    first = (today - timedelta(days=40)).replace(day=15)
    month_start = first.replace(day=1)
    await _buy(api, customer, f"{first.isoformat()}T10:00:00+08:00", sku, 1)
    url = f"/stores/{store['id']}/analysis"

    async def bought() -> dict[str, Any] | None:
        response = await api.get(f"{url}/consumption")
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer if answer["items"] else None

    # Without `from` the twelve months begin with the store's data: its first purchase.
    answer = await eventually(bought, timeout=90)
    assert (answer["from"], answer["to"]) == (first.isoformat(), today.isoformat())

    # Another purchase, consumed: its month is marked until a read that answers recomputes it.
    await _buy(api, customer, f"{(today - timedelta(days=1)).isoformat()}T10:00:00+08:00", sku, 1)

    async def marks() -> int:
        found = await scoring_db.fetchval(
            "SELECT count(*) FROM analysis_dirty_month WHERE store_id = $1", store["id"]
        )
        return int(found)

    async def marked() -> bool:
        return await marks() > 0

    await eventually(marked, timeout=90)

    tomorrow = (today + timedelta(days=1)).isoformat()
    # The month before the first data's is refused; the first data's month is answered whole.
    day_before = (month_start - timedelta(days=1)).isoformat()
    refused = {
        "to after today": await api.get(f"{url}/consumption", params={"to": tomorrow}),
        "from before the data": await api.get(
            f"{url}/consumption", params={"from": day_before, "to": today.isoformat()}
        ),
        "contacts to after today": await api.get(f"{url}/contact-times", params={"to": tomorrow}),
        "contacts from before the data": await api.get(
            f"{url}/contact-times", params={"from": day_before}
        ),
        "sources to after today": await api.get(f"{url}/sources", params={"to": tomorrow}),
        "sources from before the data": await api.get(
            f"{url}/sources", params={"from": day_before}
        ),
        "a report month before the data": await api.get(
            f"/stores/{store['id']}/report",
            params={"month": (first.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")},
        ),
    }
    for why, response in refused.items():
        assert response.status_code == 422, (why, response.text)
        assert response.headers["content-type"] == "application/problem+json", why
    for why in ("to after today", "contacts to after today", "sources to after today"):
        problem = refused[why].json()
        assert "to" in problem["detail"] and "today" in problem["detail"], why
    for why in (
        "from before the data",
        "contacts from before the data",
        "sources from before the data",
    ):
        detail = refused[why].json()["detail"]
        assert "from" in detail and first.isoformat() in detail, why
        assert month_start.isoformat() in detail, why
    assert "month" in refused["a report month before the data"].json()["detail"]
    # Nothing done by a refusal: the marked month is still to recompute.
    assert await marked()
    # The first day of the first data's month is answered (nothing before the data), and so is
    # the first day itself.
    for since in (month_start, first):
        answered = await api.get(
            f"{url}/consumption", params={"from": since.isoformat(), "to": today.isoformat()}
        )
        assert answered.status_code == 200, (since, answered.text)
        assert answered.json()["from"] == since.isoformat()
        assert sum(i["purchases"] for i in answered.json()["items"]) == 2
        assert answered.json()["items"][0]["key"] == f"{first:%Y-%m}"
        for table in ("sources", "contact-times"):
            response = await api.get(f"{url}/{table}", params={"from": since.isoformat()})
            assert response.status_code == 200, (table, since, response.text)
    assert await marks() == 0

    # A store with no data answers any otherwise valid period with an empty table.
    empty = await create_store(api)
    for table in ("consumption", "sources", "contact-times"):
        for params in ({"from": "1990-01-01", "to": "1999-12-31"}, {}):
            response = await api.get(f"/stores/{empty['id']}/analysis/{table}", params=params)
            assert (response.status_code, response.json()["items"]) == (200, []), (table, params)


async def test_one_run_of_the_fold_job_takes_the_marks_of_a_store_nobody_reads(
    stack: LocalStack, api: httpx.AsyncClient, scoring_db: asyncpg.Connection
) -> None:
    store = await create_store(api)
    sku = await _product(api)
    c1, c2 = [await create_customer(api, store_id=store["id"]) for _ in range(2)]
    await _buy(api, c1, "2025-05-10T10:00:00+08:00", sku, 1)
    p2 = await _buy(api, c2, "2025-05-20T10:00:00+08:00", sku, 2)
    await _buy(api, c1, "2025-06-02T10:00:00+08:00", sku, 1)
    await _refund(api, p2, items=[{"sku": sku, "qty": 1}])

    async def facts(count: int, total: str) -> bool:
        found = await scoring_db.fetchrow(
            "SELECT count(*), sum(total)::text FROM purchase_fact WHERE store_id = $1",
            store["id"],
        )
        return tuple(found) == (count, total)

    async def consumed() -> bool:  # the three purchases and the refund
        return await facts(3, "300.00")

    await eventually(consumed, timeout=90)

    async def marks() -> int:
        found = await scoring_db.fetchval(
            "SELECT count(*) FROM analysis_dirty_month WHERE store_id = $1", store["id"]
        )
        return int(found)

    async def summary() -> list[tuple[Any, ...]]:
        rows = await scoring_db.fetch(
            "SELECT month, customers, purchases, revenue::text FROM analysis_store_month "
            "WHERE store_id = $1 AND purchases > 0 ORDER BY month",
            store["id"],
        )
        return [tuple(r) for r in rows]

    async def from_the_facts() -> list[tuple[Any, ...]]:
        rows = await scoring_db.fetch(
            "SELECT date_trunc('month', purchased_on)::date, count(DISTINCT customer_id), "
            "count(*), sum(total)::text FROM purchase_fact "
            "WHERE store_id = $1 AND NOT wholly_refunded GROUP BY 1 ORDER BY 1",
            store["id"],
        )
        return [tuple(r) for r in rows]

    # Nobody read the store: its batches and the refund left their marks, nothing is summarised.
    assert await marks() >= 2
    assert await summary() == []

    engine = make_engine(stack.database_url("scoring"), pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        # One run folds every marked store (ours among them), its two months recomputed.
        folded = await month_summary_fold.fold_as_leader(sessions, max_stores=100_000)
        assert folded is not None and folded.months[store["id"]] == 2
        assert await marks() == 0
        assert await summary() == await from_the_facts()
        assert await summary() == [
            (date(2025, 5, 1), 2, 2, "200.00"),
            (date(2025, 6, 1), 1, 1, "100.00"),
        ]
        # A second run has nothing of the store's to do.
        again = await month_summary_fold.fold_as_leader(sessions, max_stores=100_000)
        assert again is not None and store["id"] not in again.months
        assert await summary() == await from_the_facts()

        # A later purchase marks June again. Runs of one store each go on from the previous
        # run's last store, and reach ours within as many runs as there are marked stores.
        await _buy(api, c2, "2025-06-20T10:00:00+08:00", sku, 1)

        async def bought_again() -> bool:
            return await facts(4, "400.00")

        await eventually(bought_again, timeout=90)
        assert await marks() >= 1
        marked = await scoring_db.fetchval(
            "SELECT count(DISTINCT store_id) FROM analysis_dirty_month"
        )
        after, runs = "", 0
        months: dict[str, int] = {}
        while store["id"] not in months:
            assert runs <= marked + 10, "the runs never reached the store"
            one = await month_summary_fold.fold_as_leader(sessions, max_stores=1, after=after)
            assert one is not None and len(one.months) <= 1
            after, runs, months = one.after, runs + 1, one.months
        assert months == {store["id"]: 1} and after == store["id"]
        assert await marks() == 0
        assert await summary() == await from_the_facts()
        assert (await summary())[1] == (date(2025, 6, 1), 2, 2, "200.00")
    finally:
        await engine.dispose()
