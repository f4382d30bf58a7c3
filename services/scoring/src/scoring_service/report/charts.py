"""The report's charts, drawn by matplotlib as SVG for inlining in the page.

Chinese labels are drawn as paths (``svg.fonttype = "path"``) from a CJK font on the server:
Noto Sans CJK from Debian's ``fonts-noto-cjk`` (the Makefile installs it for ``make run`` and
``make test``, the image for deployment), found through matplotlib's font manager. The page
then needs no font of the reader's and shows the same glyphs offline anywhere; each label is
also in the chart's ``<title>`` and in the data table under it, for screen readers and search.

Matplotlib's settings are process-wide (``rcParams``) and its drawing is not made for threads:
every chart is drawn under one lock, with the report's settings in force only inside it.
"""

import io
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

log = logging.getLogger(__name__)

# In order of preference: Debian's Noto Sans CJK (Simplified Chinese face), then others a
# server may have. The first the font manager knows is used.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei")
# The files those come in, for a font cache written before the font was installed.
_CJK_FILES = re.compile(r"NotoSansCJK|NotoSansSC|SourceHanSans|wqy-microhei", re.IGNORECASE)

_LOCK = threading.Lock()
_COLOURS = ("#2f6db5", "#e07b39", "#3a9e6f", "#c0504d", "#8064a2", "#4bacc6", "#9c9c9c")


def cjk_family() -> str | None:
    """The CJK font family charts are drawn with; None when the server has none (the labels
    would be boxes: the page says so)."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    found = next((f for f in CJK_FAMILIES if f in known), None)
    if found is None:
        # The font manager's cache lists the fonts of the day it was written: add the files.
        for path in font_manager.findSystemFonts():
            if _CJK_FILES.search(path):
                font_manager.fontManager.addfont(path)
        known = {f.name for f in font_manager.fontManager.ttflist}
        found = next((f for f in CJK_FAMILIES if f in known), None)
    return found


@contextmanager
def _drawing() -> Iterator[None]:
    family = cjk_family()
    settings = {
        "svg.fonttype": "path",
        # Ids made from a fixed salt: the same figures give the same page.
        "svg.hashsalt": "crm-report",
        "font.family": "sans-serif",
        "font.sans-serif": [*([family] if family else []), "DejaVu Sans"],
        "axes.unicode_minus": False,
        "font.size": 10,
    }
    with _LOCK, matplotlib.rc_context(settings):  # type: ignore[arg-type]
        yield


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart of the page: its SVG, or why it has none (``note``), and its figures as a
    table (``rows``, first the header)."""

    key: str
    title: str
    svg: str | None
    note: str | None
    rows: list[tuple[str, ...]]


def _svg(figure: Figure, *, key: str, title: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    # Inline in one page: no XML prolog or doctype, and every id (glyphs, clip paths) of this
    # chart prefixed with its key, so two charts' ids never meet in the document.
    text = text[text.index("<svg") :]
    text = re.sub(r'\bid="([^"]+)"', rf'id="{key}-\1"', text)
    text = re.sub(r'(xlink:href|href)="#([^"]+)"', rf'\1="#{key}-\2"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{key}-\1)", text)
    return text.replace("<svg ", f'<svg role="img" aria-labelledby="{key}-title" ', 1).replace(
        ">", f'><title id="{key}-title">{_escape(title)}</title>', 1
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def bar_chart(
    *,
    key: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    value_label: str,
    horizontal: bool = False,
    percent: bool = False,
    reference_lines: Sequence[tuple[float, str]] = (),
) -> str:
    """One series of bars, each labelled with its value."""
    with _drawing():
        height = max(2.6, 0.42 * len(labels) + 1.2) if horizontal else 3.4
        figure = Figure(figsize=(6.4, height))
        axes = figure.subplots()
        positions = range(len(labels))
        shown = [f"{v:.0%}" if percent else f"{v:,.0f}" for v in values]
        if horizontal:
            bars = axes.barh(positions, values, color=_COLOURS[0])
            axes.set_yticks(list(positions), labels)
            axes.invert_yaxis()
            axes.set_xlabel(value_label)
        else:
            bars = axes.bar(positions, values, color=_COLOURS[0])
            axes.set_xticks(list(positions), labels, rotation=45 if len(labels) > 6 else 0)
            axes.set_ylabel(value_label)
        axes.bar_label(bars, shown, padding=2, fontsize=8)
        for value, name in reference_lines:
            line = axes.axvline if horizontal else axes.axhline
            line(value, color=_COLOURS[3], linestyle="--", linewidth=1, label=name)
        if reference_lines:
            axes.legend(loc="lower right", fontsize=8)
        value_axis = axes.xaxis if horizontal else axes.yaxis
        if percent:
            axes.set_xlim(0, 1.1) if horizontal else axes.set_ylim(0, 1.1)
            value_axis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        else:
            # Customers and yuan: whole numbers on the axis, never 0.25 of a customer.
            value_axis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(title)
        axes.spines[["top", "right"]].set_visible(False)
        svg = _svg(figure, key=key, title=title)
    return svg


def grouped_bar_chart(
    *,
    key: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    value_label: str,
    annotations: Sequence[str] = (),
) -> str:
    """Several series side by side per label; ``annotations`` above each group."""
    with _drawing():
        figure = Figure(figsize=(6.4, 3.4))
        axes = figure.subplots()
        width = 0.8 / len(series)
        for i, (name, values) in enumerate(series):
            offsets = [p + (i - (len(series) - 1) / 2) * width for p in range(len(labels))]
            bars = axes.bar(offsets, values, width, label=name, color=_COLOURS[i])
            axes.bar_label(bars, [f"{v:,.0f}" for v in values], padding=2, fontsize=8)
        axes.set_xticks(list(range(len(labels))), labels)
        top = max((max(v, default=0) for _, v in series), default=0) or 1
        for p, text in enumerate(annotations):
            axes.annotate(text, (p, top * 1.12), ha="center", fontsize=8, color=_COLOURS[3])
        axes.set_ylim(0, top * 1.25)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(value_label)
        axes.legend(fontsize=8, loc="upper right")
        axes.set_title(title)
        axes.spines[["top", "right"]].set_visible(False)
        svg = _svg(figure, key=key, title=title)
    return svg
