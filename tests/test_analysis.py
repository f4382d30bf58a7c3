"""The analysis a store manager reads (DOMAIN.md §10) through the gateway, over a small known set
of purchases, refunds, files and visits made through the stack: consumption by month, tier,
product, category, staff and region, churn per year and the best contact times, each as JSON,
CSV and a workbook read back; bad periods and an unsupported Accept refused."""

import csv
import io
from typing import Any

import httpx
from python_calamine import CalamineWorkbook

from crm_devstack.fixtures import eventually
from tests.builders import (
    analysis_answer,
    client_as,
    create_account,
    create_customer,
    create_staff,
    create_store,
    sign_in,
    unique,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MARCH_APRIL = {"from": "2025-03-01", "to": "2025-04-30"}


async def _product(api: httpx.AsyncClient, *, category: str, price: str, days: int) -> str:
    response = await api.post(
        "/products",
        json={
            "sku": unique("SKU"),
            "name": category,
            "category": category,
            "unit_price": price,
            "days_per_unit": days,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["sku"])


async def _buy(
    api: httpx.AsyncClient, customer: dict[str, Any], at: str, *items: tuple[str, int], **kw: Any
) -> str:
    body = {"purchased_at": at, "items": [{"sku": s, "qty": q} for s, q in items], **kw}
    response = await api.post(f"/customers/{customer['id']}/purchases", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _refund(api: httpx.AsyncClient, purchase_id: str, **body: Any) -> None:
    response = await api.post(f"/purchases/{purchase_id}/refund", json={"reason": "other", **body})
    assert response.status_code == 201, response.text


async def _store(api: httpx.AsyncClient) -> dict[str, Any]:
    """March–April 2025: c1 (朝阳区, served by s1) buys 2 A + 1 B on 10 March (250) and 2 B on
    15 April, one of them refunded (50 left); c2 (海淀区, s2) 1 A at 00:30 on 1 April, local
    time (31 March in UTC); c3 1 A on 20 April, wholly refunded. Outside it, for churn: c4
    buys on 20 December 2025, c5 on 1 June 2023, c6 on 5 January 2022."""
    store = await create_store(api)
    s1, s2 = [await create_staff(api, store_id=store["id"]) for _ in "12"]
    a = await _product(api, category="保健品", price="100.00", days=30)
    b = await _product(api, category="器械", price="50.00", days=10)
    c1 = await create_customer(
        api, store_id=store["id"], owner_staff_id=s1["id"], address={"district": "朝阳区"}
    )
    c2 = await create_customer(
        api, store_id=store["id"], address={"district": "海淀区", "street": "中关村大街1号"}
    )
    c3, c4, c5, c6 = [await create_customer(api, store_id=store["id"]) for _ in range(4)]
    await _buy(api, c1, "2025-03-10T10:00:00+08:00", (a, 2), (b, 1), staff_id=s1["id"])
    await _buy(api, c2, "2025-04-01T00:30:00+08:00", (a, 1), staff_id=s2["id"])
    p3 = await _buy(api, c1, "2025-04-15T11:00:00+08:00", (b, 2), staff_id=s1["id"])
    await _refund(api, p3, items=[{"sku": b, "qty": 1}])
    p4 = await _buy(api, c3, "2025-04-20T15:00:00+08:00", (a, 1))
    await _refund(api, p4)
    await _buy(api, c4, "2025-12-20T10:00:00+08:00", (a, 1))
    await _buy(api, c5, "2023-06-01T10:00:00+08:00", (a, 1))
    await _buy(api, c6, "2022-01-05T10:00:00+08:00", (a, 1))
    manager = await create_account(api, role="store_manager", store_id=store["id"])
    token = (await sign_in(api, manager))["access_token"]
    return {"store": store, "s1": s1, "s2": s2, "a": a, "b": b, "c1": c1, "token": token}


def _groups(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (i["key"], i["customers"], i["purchases"], i["revenue"], i["share"])
        for i in answer["items"]
    ]


async def test_consumption_churn_and_contact_times_as_json_csv_and_workbook(
    api: httpx.AsyncClient,
) -> None:
    made = await _store(api)
    store_id, s1, s2 = made["store"]["id"], made["s1"]["id"], made["s2"]["id"]
    a, b = made["a"], made["b"]
    url = f"/stores/{store_id}/analysis"
    manager = client_as(api, token=made["token"])

    async def arrived(what: str) -> dict[str, Any] | None:
        response = await manager.get(f"{url}/consumption", params={"by": what, **MARCH_APRIL})
        return analysis_answer(response)

    async def by(what: str) -> dict[str, Any]:
        answer = await arrived(what)
        assert answer is not None
        return answer

    async def settled() -> dict[str, Any] | None:
        # Every purchase and refund consumed: the months and the products both net.
        months, products = await arrived("month"), await arrived("product")
        if months is None or products is None:
            return None
        done = _groups(months) == [
            ("2025-03", 1, 1, "250.00", 0.625),
            ("2025-04", 2, 2, "150.00", 0.375),
        ] and any(i["key"] == b and i["revenue"] == "100.00" for i in products["items"])
        return months if done else None

    months = await eventually(settled, timeout=90)
    assert (months["from"], months["to"], months["by"]) == ("2025-03-01", "2025-04-30", "month")
    # c3's purchase, wholly refunded, counts nowhere; c2's, at 00:30 local, in April.
    assert sorted(_groups(await by("product"))) == sorted(
        [(a, 2, 2, "300.00", 0.75), (b, 1, 2, "100.00", 0.25)]
    )
    assert _groups(await by("category")) == [
        ("保健品", 2, 2, "300.00", 0.75),
        ("器械", 1, 2, "100.00", 0.25),
    ]
    assert sorted(_groups(await by("staff"))) == sorted(
        [(s1, 1, 2, "300.00", 0.75), (s2, 1, 1, "100.00", 0.25)]
    )
    assert _groups(await by("region")) == [
        ("朝阳区", 1, 2, "300.00", 0.75),
        ("海淀区", 1, 1, "100.00", 0.25),
    ]
    # Over a year ago, the buyers of the period are inactive in the pyramid now.
    assert _groups(await by("tier")) == [("inactive", 2, 3, "400.00", 1.0)]

    # The same table as CSV and as a workbook, read back.
    as_csv = await manager.get(
        f"{url}/consumption",
        params={"by": "category", **MARCH_APRIL},
        headers={"Accept": "text/csv"},
    )
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert rows == [
        ["key", "customers", "purchases", "revenue", "share"],
        ["保健品", "2", "2", "300.00", "0.75"],
        ["器械", "1", "2", "100.00", "0.25"],
    ]
    as_xlsx = await manager.get(
        f"{url}/consumption", params={"by": "month", **MARCH_APRIL}, headers={"Accept": XLSX}
    )
    assert as_xlsx.status_code == 200, as_xlsx.text
    assert as_xlsx.headers["content-type"] == XLSX
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(as_xlsx.content)).get_sheet_by_index(0)
    cells = sheet.to_python()
    assert cells[0] == ["key", "customers", "purchases", "revenue", "share"]
    assert cells[1][0] == "分组"
    assert cells[2:] == [["2025-03", 1, 1, 250, 0.625], ["2025-04", 2, 2, 150, 0.375]]

    # Churn: 2025 judged on 31 December: c1 and c2 ran out in May (stopped), c4 is in service,
    # c5's last purchase (June 2023) is 944 days old (lost); c6 was lost by the end of 2024 and
    # is no longer in the base. 2024: c6 lost in it (725 days at its start), c5 stopped.
    async def churn(year: int, **kw: Any) -> httpx.Response:
        return await manager.get(f"{url}/churn", params={"year": year}, **kw)

    y2025 = await churn(2025)
    assert y2025.status_code == 200, y2025.text
    assert y2025.json()["items"] == [
        {
            "year": 2025,
            "as_of": "2025-12-31",
            "customers": 4,
            "lost": 1,
            "lost_rate": 0.25,
            "stopped": 2,
            "stopped_rate": 0.5,
        }
    ]
    y2024 = (await churn(2024)).json()["items"][0]
    assert (y2024["customers"], y2024["lost"], y2024["stopped"]) == (2, 1, 1)
    sheet = CalamineWorkbook.from_filelike(
        io.BytesIO((await churn(2025, headers={"Accept": XLSX})).content)
    ).get_sheet_by_index(0)
    assert sheet.to_python()[2] == [2025, "2025-12-31", 4, 1, 0.25, 2, 0.5]

    # Contact times: visits logged at known local times; a message is no contact, "未接通" a
    # contact not answered. Monday 00:30 local is Sunday in UTC.
    c1 = made["c1"]["id"]
    visits = [
        ("phone", "2025-03-03T10:15:00+08:00", "聊了用量，很满意"),
        ("phone", "2025-03-10T10:40:00+08:00", "未接通"),
        ("home", "2025-03-05T19:05:00+08:00", "在家，量了血压"),
        ("message", "2025-03-03T10:20:00+08:00", "发了微信"),
        ("phone", "2025-03-10T00:30:00+08:00", "接了，说明天来店"),
    ]
    for method, at, outcome in visits:
        body = {
            "customer_id": c1,
            "staff_id": s1,
            "method": method,
            "occurred_at": at,
            "outcome": outcome,
        }

        async def logged(body: dict[str, Any] = body) -> bool:
            # engagement knows the file once its registration is consumed
            return (await api.post("/visits", json=body)).status_code == 201

        await eventually(logged, timeout=60)

    async def contacts() -> list[dict[str, Any]] | None:
        response = await manager.get(f"{url}/contact-times", params={"from": "2025-03-01"})
        answer = analysis_answer(response)
        if answer is None:
            return None
        items: list[dict[str, Any]] = answer["items"]
        return items if sum(i["contacts"] for i in items) == 4 else None

    slots = await eventually(contacts, timeout=60)
    assert [(i["weekday"], i["hour"], i["contacts"], i["answered"]) for i in slots] == [
        (1, 0, 1, 1),
        (3, 19, 1, 1),
        (1, 10, 2, 1),
    ]
    assert slots[2]["answer_rate"] == 0.5
    as_csv = await manager.get(
        f"{url}/contact-times", params={"from": "2025-03-01"}, headers={"Accept": "text/csv"}
    )
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert rows[0] == ["weekday", "hour", "contacts", "answered", "answer_rate"]
    assert rows[3] == ["1", "10", "2", "1", "0.5"]
    await manager.aclose()


async def test_bad_periods_and_an_unsupported_accept_are_refused(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    url = f"/stores/{store['id']}/analysis"
    refused = {
        "reversed": await api.get(
            f"{url}/consumption", params={"from": "2025-05-01", "to": "2025-04-30"}
        ),
        "too long": await api.get(
            f"{url}/consumption", params={"from": "2000-01-01", "to": "2025-04-30"}
        ),
        "unknown grouping": await api.get(f"{url}/consumption", params={"by": "colour"}),
        "a year to come": await api.get(f"{url}/churn", params={"year": 3000}),
        "contacts reversed": await api.get(
            f"{url}/contact-times", params={"from": "2025-05-01", "to": "2025-04-30"}
        ),
    }
    for why, response in refused.items():
        assert response.status_code == 422, (why, response.text)
        assert response.headers["content-type"] == "application/problem+json", why
    assert "from" in refused["reversed"].json()["detail"]
    assert "3660" in refused["too long"].json()["detail"]
    png = await api.get(f"{url}/consumption", headers={"Accept": "image/png"})
    assert png.status_code == 406, png.text
    assert png.headers["content-type"] == "application/problem+json"
    # A store with no purchases: an empty table, not an error.
    empty = await api.get(f"{url}/consumption", params=MARCH_APRIL)
    assert (empty.status_code, empty.json()["items"]) == (200, [])


async def test_sources_as_csv_and_a_workbook(api: httpx.AsyncClient) -> None:
    """The customer service's table of files per source channel, in the managers' formats."""
    store = await create_store(api)
    a = await _product(api, category="保健品", price="100.00", days=30)
    lecture = {"source": {"channel": "lecture", "method": "血压测量", "cost": "10.00"}}
    bought = await create_customer(api, store_id=store["id"], **lecture)
    await create_customer(api, store_id=store["id"], **lecture)
    await _buy(api, bought, "2025-03-10T10:00:00+08:00", (a, 1))
    url = f"/stores/{store['id']}/analysis/sources"
    as_csv = await api.get(url, headers={"Accept": "text/csv"})
    assert as_csv.status_code == 200, as_csv.text
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert rows == [
        ["channel", "files", "converted", "conversion_rate", "cost", "cost_per_converted"],
        ["lecture", "2", "1", "0.5", "20.00", "20.00"],
    ]
    as_xlsx = await api.get(url, headers={"Accept": XLSX})
    assert as_xlsx.headers["content-type"] == XLSX
    cells = CalamineWorkbook.from_filelike(io.BytesIO(as_xlsx.content)).get_sheet_by_index(0)
    assert cells.to_python()[2] == ["lecture", 2, 1, 0.5, 20, 20]
    refused = await api.get(url, headers={"Accept": "application/pdf"})
    assert refused.status_code == 406, refused.text
