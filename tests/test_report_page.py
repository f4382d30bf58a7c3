"""The manager's monthly report (``GET /stores/{id}/report``) opened in a real headless Chromium
(Debian's ``chromium``, which ``make test`` installs) through the gateway, over a small known
store of this month: purchases, a visit doing a follow-up task, files from two source channels
and the staff's tasks. The page loads with no console error and no request but its own, every
chart is a visible SVG whose Chinese labels are drawn from the CJK font, the screenshot is not
blank; a bad month is 422, staff 403, another store's manager 404."""

import asyncio
import io
import os
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from PIL import Image
from playwright.async_api import async_playwright

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from tests.builders import client_as, create_account, create_store, sign_in, unique

ZONE = ZoneInfo("Asia/Shanghai")
CHROMIUM = "/usr/bin/chromium"
CHARTS = ("pyramid", "lifecycle", "by-month", "by-product", "sources", "staff")


def chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if found is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (as root)")
    return found


def this_month() -> tuple[datetime, datetime]:
    """The store-local month now: its first instant and now."""
    now = datetime.now(ZONE)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now


async def _post(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(path, json=body)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


async def _store(api: httpx.AsyncClient) -> dict[str, Any]:
    """This month: 张敏 (s1) serves c1 (a lecture's file, cost 30) who buys 2 A; 王磊 (s2)
    serves c2 (walked in) who buys 1 B; c3 (another lecture file) buys nothing. Three months
    ago c1 bought 1 B (so this month's A is a first purchase of A, with its follow-up plan).
    One of each staff member's follow-up tasks is moved to today: 张敏's done by a visit,
    王磊's left open."""
    store = await create_store(api)
    s1 = await _post(api, "/staff", {"store_id": store["id"], "name": "张敏", "role": "staff"})
    s2 = await _post(api, "/staff", {"store_id": store["id"], "name": "王磊", "role": "staff"})
    a, b = [
        (
            await _post(
                api,
                "/products",
                {
                    "sku": unique(prefix),
                    "name": name,
                    "category": "保健品",
                    "unit_price": price,
                    "days_per_unit": 30,
                },
            )
        )["sku"]
        for prefix, name, price in (("A", "鱼油", "100.00"), ("B", "钙片", "50.00"))
    ]

    async def customer(owner: str, channel: str, cost: str) -> dict[str, Any]:
        return await _post(
            api,
            "/customers",
            {
                "store_id": store["id"],
                "name": "王芳",
                "owner_staff_id": owner,
                "source": {"channel": channel, "cost": cost},
            },
        )

    c1 = await customer(s1["id"], "lecture", "30.00")
    c2 = await customer(s2["id"], "walk_in", "0.00")
    await customer(s1["id"], "lecture", "30.00")
    first, now = this_month()
    # Within this month whatever the day: halfway from its start to now.
    during = (first + (now - first) / 2).isoformat()
    earlier = (first - timedelta(days=85)).replace(day=1, hour=10).isoformat()

    async def buy(who: dict[str, Any], at: str, sku: str, qty: int, staff: str) -> None:
        body = {"purchased_at": at, "items": [{"sku": sku, "qty": qty}], "staff_id": staff}
        await _post(api, f"/customers/{who['id']}/purchases", body)

    await buy(c1, earlier, b, 1, s1["id"])
    await buy(c1, during, a, 2, s1["id"])
    await buy(c2, during, b, 1, s2["id"])

    async def task_today(who: dict[str, Any]) -> str:
        async def planned() -> list[dict[str, Any]] | None:
            response = await api.get("/tasks", params={"customer_id": who["id"]})
            items = [
                t
                for t in response.json()["items"]
                if t["kind"] == "follow_up" and t["status"] == "open" and t["due_on"] >= during
            ]
            return items or None

        task = min(await eventually(planned, timeout=60), key=lambda t: t["due_on"])
        moved = await api.post(
            f"/tasks/{task['id']}/reschedule",
            json={"due_on": now.date().isoformat(), "reason": "客户今天有空"},
        )
        assert moved.status_code == 200, moved.text
        return str(task["id"])

    done = await task_today(c1)
    await task_today(c2)
    await _post(
        api,
        "/visits",
        {
            "customer_id": c1["id"],
            "staff_id": s1["id"],
            "method": "phone",
            "occurred_at": now.isoformat(),
            "outcome": "聊了用量，很满意",
            "task_id": done,
        },
    )
    manager = await create_account(api, role="store_manager", store_id=store["id"])
    return {
        "store": store,
        "month": first.strftime("%Y-%m"),
        "products": (a, b),
        "s1": s1,
        "token": (await sign_in(api, manager))["access_token"],
    }


def _sections(html: str) -> dict[str, str]:
    return dict(
        re.findall(r'<section id="chart-[^"]+" data-chart="([^"]+)".*?>(.*?)</section>', html, re.S)
    )


def _cells(section: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", section, re.S)
    return [re.findall(r"<t[dh]>(.*?)</t[dh]>", row) for row in rows]


# Each chart's Chinese labels, found in the browser: the label's text group (matplotlib writes
# the text as a comment before its glyphs) drawn with one glyph per character, every glyph a
# path of the CJK font with a visible outline.
_GLYPHS_JS = """
([svg, label]) => {
    const walker = document.createTreeWalker(svg, NodeFilter.SHOW_COMMENT);
    const found = [];
    while (walker.nextNode()) {
        if (walker.currentNode.nodeValue.trim() !== label) continue;
        const group = walker.currentNode.nextElementSibling;
        const uses = group ? [...group.querySelectorAll("use")] : [];
        found.push(uses.map(u => {
            const id = (u.getAttribute("xlink:href") || u.getAttribute("href")).slice(1);
            const glyph = document.getElementById(id);
            const box = glyph ? glyph.getBBox() : {width: 0, height: 0};
            return {id, width: box.width, height: box.height};
        }));
    }
    return found;
}
"""


async def test_report_page_in_headless_chromium(
    api: httpx.AsyncClient, stack: LocalStack, tmp_path: Path
) -> None:
    executable = chromium()
    made = await _store(api)
    store_id, month = made["store"]["id"], made["month"]
    a, b = made["products"]
    manager = client_as(api, token=made["token"])
    path = f"/stores/{store_id}/report"

    async def staff_counted() -> list[dict[str, Any]] | None:
        # Engagement's own counts of the month, which the staff chart must show.
        response = await manager.get(f"/stores/{store_id}/staff-stats", params=_month(month))
        items = [i for i in response.json()["items"] if i["tasks_due"]]
        done = any(i["done_on_time"] for i in items)
        return items if len(items) == 2 and done else None

    staff = await eventually(staff_counted, timeout=60)

    async def settled() -> str | None:
        response = await manager.get(path, params={"month": month})
        assert response.status_code == 200, response.text
        html = response.text
        products = _cells(_sections(html)["by-product"])
        # Every purchase consumed by scoring (its product lines for this month).
        return html if [r[0] for r in products[1:]] == [a, b] else None

    html = await eventually(settled, timeout=90)
    response = await manager.get(path, params={"month": month})
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "<script" not in html and "http://" not in html.replace(
        "http://www.w3.org/", ""
    ).replace("http://purl.org/", "").replace("http://creativecommons.org/", "")

    sections = _sections(html)
    assert set(sections) == set(CHARTS)
    assert all('data-drawn="true"' in html.split(f'data-chart="{c}"')[1][:30] for c in CHARTS)
    # The figures under each chart: scoring's, the customer service's and engagement's.
    assert _cells(sections["pyramid"])[1:] == [["VIP客户", "1"], ["小客户", "1"], ["潜在客户", "1"]]
    assert _cells(sections["lifecycle"])[1:] == [["年度新购", "1"], ["在服二线", "1"]] or (
        # A first purchase three months ago is of last year in the year's first months.
        _cells(sections["lifecycle"])[1:] == [["年度新购", "2"]]
    )
    months = _cells(sections["by-month"])[1:]
    assert len(months) == 12 and months[-1][0] == month
    assert [m for m in months if m[3] != "0.00"] == [
        [months[-4][0], "1", "1", "50.00"],
        [month, "2", "2", "250.00"],
    ]
    assert _cells(sections["by-product"])[1:] == [
        [a, "1", "1", "200.00", "80.0%"],
        [b, "1", "1", "50.00", "20.0%"],
    ]
    assert _cells(sections["sources"])[1:] == [
        ["科普讲座", "2", "1", "50.0%", "60.00"],
        ["进店", "1", "1", "100.0%", "0.00"],
    ]
    names = {made["s1"]["id"]: "张敏"}
    assert sorted(_cells(sections["staff"])[1:]) == sorted(
        [
            names.get(s["staff_id"], "王磊"),
            str(s["tasks_due"]),
            f"{s['completion_rate']:.1%}",
        ]
        for s in staff
    )

    console: list[str] = []
    failed: list[str] = []
    requested: list[str] = []
    url = f"{stack.url('gateway')}/api/v1{path}?month={month}"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, chromium_sandbox=False, args=["--no-sandbox"]
        )
        try:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900},
                extra_http_headers={"Authorization": f"Bearer {made['token']}"},
            )
            page = await context.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.on("request", lambda r: requested.append(r.url))
            loaded = await page.goto(url, wait_until="load")
            assert loaded is not None and loaded.status == 200
            assert await page.title() == f"门店月度报告 {month}"
            labels = {
                "pyramid": ["客户金字塔", "VIP客户", "小客户", "潜在客户", "客户数"],
                "lifecycle": ["年度分类", "年度新购", "客户数"],
                "by-month": ["月度消费额", "消费额（元）"],
                "by-product": ["产品消费额", "消费额（元）"],
                "sources": ["收档渠道转化", "科普讲座", "进店", "建档数", "成交数", "转化率 50%"],
                "staff": ["员工回访完成率", "张敏", "王磊", "完成率", "80% 可接收公海档案"],
            }
            for key in CHARTS:
                svg = page.locator(f"#chart-{key} svg")
                assert await svg.count() == 1
                await svg.scroll_into_view_if_needed()
                assert await svg.is_visible(), key
                box = await svg.bounding_box()
                assert box is not None and box["width"] > 200 and box["height"] > 100, key
                handle = await svg.element_handle()
                for label in labels[key]:
                    [glyphs, *_] = await page.evaluate(_GLYPHS_JS, [handle, label])
                    assert all("CJK" in g["id"] for g in glyphs), (key, label, glyphs)
                    # A space is a glyph without an outline; every other character has one.
                    drawn = [g for g in glyphs if g["width"] > 0 and g["height"] > 0]
                    assert len(drawn) == len(label.replace(" ", "")), (key, label, glyphs)
                # Each chart, on screen, holds more than a blank box: its bars' colour and text.
                shot = Image.open(io.BytesIO(await svg.screenshot())).convert("RGB")
                colours = shot.getcolors(maxcolors=1 << 20) or []
                assert len(colours) > 20, key
                assert any(c == (0x2F, 0x6D, 0xB5) for _, c in colours), key
            screenshot = tmp_path / "report.png"
            await page.screenshot(path=str(screenshot), full_page=True)
        finally:
            await browser.close()
    assert console == [] and failed == []
    assert requested == [url]  # nothing but the page itself: no script, font or image
    picture = Image.open(screenshot).convert("RGB")
    pixels = picture.getcolors(maxcolors=1 << 24) or []
    white = next((n for n, c in pixels if c == (255, 255, 255)), 0)
    assert len(pixels) > 100
    assert white < 0.95 * picture.width * picture.height


def _month(month: str) -> dict[str, str]:
    first = datetime.strptime(month, "%Y-%m").date()
    last = ((first + timedelta(days=31)).replace(day=1)) - timedelta(days=1)
    return {"from": first.isoformat(), "to": min(last, datetime.now(ZONE).date()).isoformat()}


async def test_report_refuses_a_bad_month_staff_and_another_store(api: httpx.AsyncClient) -> None:
    store, other = await create_store(api), await create_store(api)
    manager = await create_account(api, role="store_manager", store_id=store["id"])
    as_manager = client_as(api, token=(await sign_in(api, manager))["access_token"])
    path = f"/stores/{store['id']}/report"
    next_month = (datetime.now(ZONE).replace(day=1) + timedelta(days=32)).strftime("%Y-%m")
    for bad in ("2025-13", "2025-4", "april", next_month, "1989-12"):
        response = await as_manager.get(path, params={"month": bad})
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert "month" in response.text
    # A store without any figure yet is still a page, each chart saying there is nothing.
    empty = await as_manager.get(path)
    assert empty.status_code == 200 and empty.text.count('data-drawn="false"') == len(CHARTS)

    staff = await create_account(api, role="staff", store_id=store["id"])
    as_staff = client_as(api, token=(await sign_in(api, staff))["access_token"])
    assert (await as_staff.get(path)).status_code == 403
    elsewhere = await create_account(api, role="store_manager", store_id=other["id"])
    as_elsewhere = client_as(api, token=(await sign_in(api, elsewhere))["access_token"])
    assert (await as_elsewhere.get(path)).status_code == 404


async def test_a_peer_down_leaves_its_chart_saying_so_and_the_page_served(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    product = await _post(
        api,
        "/products",
        {
            "sku": unique("P"),
            "name": "鱼油",
            "category": "保健品",
            "unit_price": "80.00",
            "days_per_unit": 30,
        },
    )
    buyer = await _post(
        api,
        "/customers",
        {"store_id": store["id"], "name": "王芳", "source": {"channel": "media", "cost": "5.00"}},
    )
    first, now = this_month()
    body = {
        "purchased_at": (first + (now - first) / 2).isoformat(),
        "items": [{"sku": product["sku"], "qty": 1}],
    }
    await _post(api, f"/customers/{buyer['id']}/purchases", body)
    manager = await create_account(api, role="store_manager", store_id=store["id"])
    as_manager = client_as(api, token=(await sign_in(api, manager))["access_token"])
    path = f"/stores/{store['id']}/report"

    async def consumed() -> bool:
        return 'data-chart="by-product" data-drawn="true"' in (await as_manager.get(path)).text

    await eventually(consumed, timeout=60)
    await asyncio.to_thread(stack.stop_service, "engagement")
    try:
        response = await as_manager.get(path)
    finally:
        await asyncio.to_thread(stack.start_service, "engagement")
        await asyncio.to_thread(stack.wait_healthy, "engagement")
    assert response.status_code == 200
    sections = _sections(response.text)
    assert "数据暂不可用：回访服务未应答" in sections["staff"]
    assert "<svg" not in sections["staff"]
    for key in ("pyramid", "lifecycle", "by-month", "by-product", "sources"):
        assert "<svg" in sections[key], key
    assert _cells(sections["sources"])[1:] == [["媒体互动", "1", "1", "100.0%", "5.00"]]
