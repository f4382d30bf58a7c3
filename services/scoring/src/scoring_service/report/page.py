"""The report page: one HTML document holding every chart as inline SVG, its own style sheet
and nothing else. It loads no script, font, image or style from anywhere (the response's
Content-Security-Policy forbids every fetch), so a saved copy opens offline as served.

Each chart is built on its own: figures a peer could not give, or a chart that could not be
drawn, leave that chart's place saying why, and the rest of the page stands.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any, TypeVar

import anyio
import asyncpg
from fastapi import Request

from scoring_service.report import charts, figures, labels, peers
from scoring_service.report.charts import Chart
from scoring_service.report.figures import Month
from scoring_service.scores import segments

log = logging.getLogger(__name__)

T = TypeVar("T")

# Styles inline only; no script, font, image or connection is allowed at all.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_STYLE = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif;
       margin: 24px; color: #222; background: #fff; }
header p { color: #555; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 24px; }
section { border: 1px solid #ddd; border-radius: 6px; padding: 12px 16px; }
section svg { width: 100%; height: auto; display: block; }
.missing { color: #a33; background: #fbeeee; padding: 12px; border-radius: 4px; }
table { border-collapse: collapse; margin-top: 8px; font-size: 13px; }
th, td { border-bottom: 1px solid #eee; padding: 2px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
details summary { cursor: pointer; color: #555; font-size: 13px; }
"""

# What a chart's place says when its figures could not be had or drawn.
PEER_DOWN = "数据暂不可用：{who}未应答，请稍后刷新。"
NOT_DRAWN = "图表生成失败，请稍后刷新。"
NO_DATA = "本期暂无数据。"
NO_FONT = "服务器缺少中文字体（fonts-noto-cjk），图中的中文可能显示为方框。"


async def _safely(get: Callable[[], Awaitable[T]], *, who: str) -> T | str:
    """The figures, or what the chart's place says instead."""
    try:
        return await get()
    except peers.PeerUnavailable as exc:
        log.warning("report figures unavailable", extra={"fields": {"peer": who, "why": str(exc)}})
        return PEER_DOWN.format(who=who)


def _money(value: Any) -> str:
    return f"{float(value):,.2f}"


def _charts(found: dict[str, Any], month: Month) -> list[Chart]:
    """Every chart of the page, in its order, drawn (in a worker thread: matplotlib's drawing
    is CPU work that must not hold the event loop)."""
    made: list[Chart] = []

    def add(key: str, title: str, data: Any, draw: Callable[[Any], str], rows: Any) -> None:
        if isinstance(data, str):  # why the figures are missing
            made.append(Chart(key, title, None, data, []))
            return
        table = rows(data)
        if len(table) <= 1:
            made.append(Chart(key, title, None, NO_DATA, []))
            return
        try:
            made.append(Chart(key, title, draw(data), None, table))
        except Exception:
            log.exception("report chart not drawn", extra={"fields": {"chart": key}})
            made.append(Chart(key, title, None, NOT_DRAWN, table))

    counts = found["distribution"]

    def counted(dimension: str, words: dict[str, str]) -> list[tuple[str, int]]:
        pairs = counts.counts[dimension].items()
        named = [
            (labels.label(words, k) if k != segments.UNCLASSIFIED else labels.UNCLASSIFIED, n)
            for k, n in pairs
        ]
        return [(k, n) for k, n in named if n] if counts.customers else []

    tiers = counted("value_tier", labels.VALUE_TIERS)
    add(
        "pyramid",
        "客户金字塔（截至今日）",
        tiers,
        lambda d: charts.bar_chart(
            key="pyramid",
            title="客户金字塔",
            labels=[k for k, _ in d],
            values=[n for _, n in d],
            value_label="客户数",
            horizontal=True,
        ),
        lambda d: [("层级", "客户数"), *((k, str(n)) for k, n in d)],
    )
    stages = [
        (k, n) for k, n in counted("lifecycle", labels.LIFECYCLES) if k != labels.UNCLASSIFIED
    ]
    add(
        "lifecycle",
        "年度分类（截至今日）",
        stages,
        lambda d: charts.bar_chart(
            key="lifecycle",
            title="年度分类",
            labels=[k for k, _ in d],
            values=[n for _, n in d],
            value_label="客户数",
        ),
        lambda d: [("分类", "客户数"), *((k, str(n)) for k, n in d)],
    )
    add(
        "by-month",
        f"近十二个月消费（至 {month.name}）",
        # Twelve months of nothing are no chart.
        found["by_month"] if any(g.revenue for g in found["by_month"]) else [],
        lambda d: charts.bar_chart(
            key="by-month",
            title="月度消费额",
            labels=[g.key[2:] for g in d],
            values=[float(g.revenue) for g in d],
            value_label="消费额（元）",
        ),
        lambda d: [
            ("月份", "客户数", "购买次数", "消费额（元）"),
            *((g.key, str(g.customers), str(g.purchases), _money(g.revenue)) for g in d),
        ],
    )
    add(
        "by-product",
        f"{month.name} 产品消费",
        found["by_product"],
        lambda d: charts.bar_chart(
            key="by-product",
            title="产品消费额",
            labels=[g.key or labels.UNNAMED for g in d[:12]],
            values=[float(g.revenue) for g in d[:12]],
            value_label="消费额（元）",
            horizontal=True,
        ),
        lambda d: [
            ("产品", "客户数", "购买次数", "消费额（元）", "占比"),
            *(
                (
                    g.key or labels.UNNAMED,
                    str(g.customers),
                    str(g.purchases),
                    _money(g.revenue),
                    f"{g.share:.1%}",
                )
                for g in d
            ),
        ],
    )
    add(
        "sources",
        f"{month.name} 来源转化",
        found["sources"],
        lambda d: charts.grouped_bar_chart(
            key="sources",
            title="收档渠道转化",
            labels=[labels.label(labels.SOURCE_CHANNELS, s["channel"]) for s in d],
            series=[("建档数", [s["files"] for s in d]), ("成交数", [s["converted"] for s in d])],
            value_label="档案数",
            annotations=[f"转化率 {s['conversion_rate']:.0%}" for s in d],
        ),
        lambda d: [
            ("渠道", "建档数", "成交数", "转化率", "获客成本（元）"),
            *(
                (
                    labels.label(labels.SOURCE_CHANNELS, s["channel"]),
                    str(s["files"]),
                    str(s["converted"]),
                    f"{s['conversion_rate']:.1%}",
                    _money(s["cost"]),
                )
                for s in d
            ),
        ],
    )
    add(
        "staff",
        f"{month.name} 员工回访完成率",
        found["staff"],
        lambda d: charts.bar_chart(
            key="staff",
            title="员工回访完成率",
            labels=[name for name, _, _ in d],
            values=[rate for _, _, rate in d],
            value_label="完成率",
            horizontal=True,
            percent=True,
            reference_lines=[(0.8, "80% 可接收公海档案"), (0.5, "50%")],
        ),
        lambda d: [
            ("员工", "应办任务", "完成率"),
            *((name, str(due), f"{rate:.1%}") for name, due, rate in d),
        ],
    )
    return made


async def report(request: Request, db: asyncpg.Connection, *, store_id: str, month: Month) -> str:
    """The store's report for ``month`` as one HTML document."""
    # The peers first (they wait on the network), scoring's own figures meanwhile.
    sources = asyncio.ensure_future(
        _safely(lambda: figures.sources(request, store_id=store_id, month=month), who="客户服务")
    )
    staff = asyncio.ensure_future(
        _safely(
            lambda: figures.staff_completion(request, store_id=store_id, month=month),
            who="回访服务",
        )
    )
    try:
        found: dict[str, Any] = {
            "distribution": await figures.distribution(db, store_id=store_id),
            "by_month": await figures.consumption_by_month(db, store_id=store_id, month=month),
            "by_product": await figures.consumption_by_product(db, store_id=store_id, month=month),
        }
        found["sources"] = await sources
        found["staff"] = await staff
    finally:
        for task in (sources, staff):
            task.cancel()
    drawn = await anyio.to_thread.run_sync(_charts, found, month)
    font_missing = await anyio.to_thread.run_sync(charts.cjk_family) is None
    return _html(store_id=store_id, month=month, charts=drawn, font_missing=font_missing)


def _table(rows: list[tuple[str, ...]]) -> str:
    if not rows:
        return ""
    head, *body = rows
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    lines = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in body
    )
    return (
        f"<details><summary>数据表</summary><table><thead><tr>{cells}</tr></thead>"
        f"<tbody>{lines}</tbody></table></details>"
    )


def _html(*, store_id: str, month: Month, charts: list[Chart], font_missing: bool) -> str:
    sections = []
    for chart in charts:
        body = chart.svg if chart.svg else f'<p class="missing">{escape(chart.note or "")}</p>'
        sections.append(
            f'<section id="chart-{chart.key}" data-chart="{chart.key}" '
            f'data-drawn="{"true" if chart.svg else "false"}">'
            f"<h2>{escape(chart.title)}</h2>{body}{_table(chart.rows)}</section>"
        )
    warning = f'<p class="missing">{escape(NO_FONT)}</p>' if font_missing else ""
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>门店月度报告 {escape(month.name)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>门店月度报告 · {escape(month.name)}</h1>"
        f"<p>门店 {escape(store_id)} · {month.first:%Y-%m-%d} 至 {month.last:%Y-%m-%d}</p>"
        f"{warning}</header>"
        f"<main>{''.join(sections)}</main></body></html>"
    )
