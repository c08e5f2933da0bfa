"""Dashboard charts: server-rendered SVG from matplotlib (no JavaScript in the browser).

Each function takes the figures already decided by the analytics use case and returns
one `<svg>` element as text, ready to be placed in a page:

- a suppressed figure (`None`: fewer cases than the policy threshold) is drawn as a
  hatched, unfilled outline labelled "fewer than N" whose size never depends on the true
  figure (the chart never receives it);
- the root element carries `role="img"`, an `aria-labelledby` naming its `<title>` and
  `<desc>`; the page puts the data table beside each chart, which is the accessible
  version of the figure;
- output is deterministic (same input, same bytes): fixed font (DejaVu Sans, shipped with
  matplotlib), a fixed `svg.hashsalt`, no date in the metadata, and every id prefixed by
  the chart's own `chart_id` so several charts can sit inline in one page;
- rendering uses the object-oriented API (`Figure` + the SVG canvas, never pyplot's global
  figure manager) under one lock: matplotlib does not promise thread safety (its font
  cache and text layout are shared), and callers render from worker threads
  (`asyncio.to_thread`) so the event loop never waits on a drawing;
- the last CACHE_SIZE drawings are kept by their arguments (the output is a pure function
  of them): a dashboard viewed again with unchanged figures draws nothing. Drawing ten
  charts takes about 1 s on the development machine under load.
"""

from __future__ import annotations

import functools
import io
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import ParamSpec

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

# Process-wide settings, read when a figure is saved; set once here (the only user of
# matplotlib in the service), never changed per call, so threads see one value.
matplotlib.rcParams.update(
    {
        "svg.hashsalt": "hrcase-dashboard",
        # Text stays text (<text> elements, selectable, read by screen readers) rather
        # than glyph outlines; the browser draws it with the named font.
        "svg.fonttype": "none",
        "font.family": "DejaVu Sans",
        "font.size": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "hatch.linewidth": 1.0,
    }
)

# The portal's palette (templates/base.html.j2): brand blue, and a dark orange for a
# second series; both meet WCAG AA against white. Bars also carry their value as text,
# so no figure is told by colour alone.
INK = "#1b1b1b"
MUTED = "#4a4a4a"
SERIES_COLOURS = ("#0b4f8a", "#a14a00")
SUPPRESSED_EDGE = "#4a4a4a"
WIDTH_INCHES = 7.0
CACHE_SIZE = 256
_RENDER_LOCK = threading.Lock()
_ID = re.compile(r'\bid="([^"]+)"')
_URL_REF = re.compile(r"url\(#([^)]+)\)")
_HREF = re.compile(r'(xlink:href|href)="#([^"]+)"')
_GLOBAL_STYLE_RULES = "stroke-linejoin: round; stroke-linecap: butt"
_GLOBAL_STYLE = f'<style type="text/css">*{{{_GLOBAL_STYLE_RULES}}}</style>'
CHART_ID = re.compile(r"^[a-z][a-z0-9-]{0,63}$")


@dataclass(frozen=True)
class Bar:
    """One bar: its label and its value, or None when the figure is suppressed.
    `hidden`: suppressed so that a small count cannot be worked out from the total (it is
    not small): drawn as no bar, labelled "hidden", never as "fewer than N"."""

    label: str
    value: float | None
    hidden: bool = False


@dataclass(frozen=True)
class Series:
    """One series of a grouped bar chart: a name (the legend) and one value per group
    (None: suppressed)."""

    name: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class Suppression:
    """How a suppressed figure is drawn: an outline up to `height` (0: a marker at the
    baseline) and the words written on it. For counts the height is the threshold itself,
    a bound everybody already knows from the page, never the figure."""

    label: str = "fewer than 5"
    height: float = 0.0


def counts_suppression(threshold: int) -> Suppression:
    """The outline for a suppressed count: up to the threshold, "fewer than <threshold>"."""
    return Suppression(label=f"fewer than {threshold}", height=float(threshold))


P = ParamSpec("P")


def _frozen(value: object) -> object:
    """Lists as tuples (all the way down), so a chart's arguments can key the cache."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value


def _remembered(draw: Callable[P, str]) -> Callable[P, str]:
    """Keep the last CACHE_SIZE drawings by their arguments: the output is a pure function
    of them (see module docstring), and a dashboard viewed again with unchanged figures
    costs no drawing."""
    cached = functools.lru_cache(maxsize=CACHE_SIZE)(draw)

    @functools.wraps(draw)
    def call(*args: P.args, **kwargs: P.kwargs) -> str:
        frozen_args = tuple(_frozen(a) for a in args)
        frozen_kwargs = {k: _frozen(v) for k, v in kwargs.items()}
        return cached(*frozen_args, **frozen_kwargs)

    return call


@_remembered
def bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[Bar],
    *,
    axis_label: str,
    suppression: Suppression,
    value_format: str = "{:,.0f}",
) -> str:
    """Horizontal bars, one per label, top to bottom in the given order (categories,
    channels, teams, age bands, stages). Returns one `<svg>` element."""
    _check_id(chart_id)
    rows = max(len(bars), 1)
    figure = Figure(figsize=(WIDTH_INCHES, 0.9 + 0.38 * rows))
    axes = _axes(figure, left=_label_room([bar.label for bar in bars]), bottom=0.55, top=0.1)
    positions = list(range(len(bars)))
    shown = [bar.value if bar.value is not None else 0.0 for bar in bars]
    container = axes.barh(positions, shown, color=SERIES_COLOURS[0], height=0.65)
    suppressed = [i for i, bar in enumerate(bars) if bar.value is None and not bar.hidden]
    _draw_suppressed_h(axes, container, suppressed, suppression)
    axes.set_yticks(positions, [bar.label for bar in bars])
    axes.invert_yaxis()
    axes.set_xlabel(axis_label, color=MUTED)
    top = max([*(v for v in shown), suppression.height, 1.0])
    axes.set_xlim(0, top * 1.18)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    _label_values_h(axes, container, bars, value_format, suppression)
    _tidy(axes)
    if not bars:
        _say_empty(axes)
    return _svg(figure, chart_id, title, _describe(title, bars, value_format, suppression))


@_remembered
def column_chart(
    chart_id: str,
    title: str,
    bars: Sequence[Bar],
    *,
    axis_label: str,
    suppression: Suppression,
    value_format: str = "{:,.0f}",
) -> str:
    """Vertical columns in time order (weekly volume), each with its value on top; week
    labels thin out on long periods. Returns one `<svg>` element."""
    _check_id(chart_id)
    figure = Figure(figsize=(WIDTH_INCHES, 3.2))
    axes = _axes(figure, left=0.65, bottom=0.8, top=0.15)
    positions = list(range(len(bars)))
    shown = [bar.value if bar.value is not None else 0.0 for bar in bars]
    container = axes.bar(positions, shown, color=SERIES_COLOURS[0], width=0.7)
    suppressed = [i for i, bar in enumerate(bars) if bar.value is None and not bar.hidden]
    for index in suppressed:
        patch = container.patches[index]
        patch.set_height(suppression.height)
        _hatch(patch)
    # Week labels thin out on long periods so they never overlap.
    step = max(1, len(bars) // 12 + (1 if len(bars) % 12 else 0)) if len(bars) > 12 else 1
    axes.set_xticks(positions[::step], [bar.label for bar in bars][::step], rotation=45, ha="right")
    axes.set_ylabel(axis_label, color=MUTED)
    top = max([*shown, suppression.height, 1.0])
    axes.set_ylim(0, top * 1.2)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    for index, bar in enumerate(bars):
        text = (
            value_format.format(bar.value)
            if bar.value is not None
            else HIDDEN_TEXT
            if bar.hidden
            else f"<{_bound(suppression)}"
        )
        height = bar.value if bar.value is not None else 0 if bar.hidden else suppression.height
        axes.annotate(
            text,
            (index, height),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            color=INK,
        )
    _tidy(axes)
    if not bars:
        _say_empty(axes)
    return _svg(figure, chart_id, title, _describe(title, bars, value_format, suppression))


@_remembered
def grouped_bar_chart(
    chart_id: str,
    title: str,
    groups: Sequence[str],
    series: Sequence[Series],
    *,
    axis_label: str,
    suppression: Suppression,
    value_format: str = "{:,.0f}",
    limit: float | None = None,
) -> str:
    """Horizontal grouped bars: for each group (a team) one bar per series (first
    response, resolution; or median, p90). `limit` fixes the axis end (100 for %)."""
    _check_id(chart_id)
    if any(len(s.values) != len(groups) for s in series):
        raise ValueError("every series needs one value per group")
    figure = Figure(figsize=(WIDTH_INCHES, 1.3 + 0.32 * max(len(groups), 1) * max(len(series), 1)))
    axes = _axes(figure, left=_label_room(groups), bottom=0.55, top=0.4)
    band = 0.8 / max(len(series), 1)
    values_seen: list[float] = []
    for number, one in enumerate(series):
        positions = [g + (number - (len(series) - 1) / 2) * band for g in range(len(groups))]
        shown = [v if v is not None else 0.0 for v in one.values]
        values_seen += shown
        container = axes.barh(
            positions,
            shown,
            height=band * 0.92,
            color=SERIES_COLOURS[number % len(SERIES_COLOURS)],
            label=one.name,
        )
        suppressed = [i for i, v in enumerate(one.values) if v is None]
        _draw_suppressed_h(axes, container, suppressed, suppression)
        bars = [Bar(group, value) for group, value in zip(groups, one.values, strict=True)]
        _label_values_h(axes, container, bars, value_format, suppression)
    axes.set_yticks(list(range(len(groups))), list(groups))
    axes.invert_yaxis()
    axes.set_xlabel(axis_label, color=MUTED)
    top = limit if limit is not None else max([*values_seen, suppression.height, 1.0])
    # Room after the longest bar for its value; ticks stop at the limit (no "120 %").
    axes.set_xlim(0, top * 1.2)
    if limit is not None:
        axes.set_xticks([limit * step / 5 for step in range(6)])
    if series:
        axes.legend(
            loc="lower left",
            bbox_to_anchor=(0, 1.0),
            ncols=len(series),
            frameon=False,
            fontsize=9,
            borderaxespad=0.2,
        )
    _tidy(axes)
    if not groups:
        _say_empty(axes)
    description = "; ".join(
        f"{one.name}: " + _describe("", _zip_bars(groups, one), value_format, suppression)
        for one in series
    )
    return _svg(figure, chart_id, title, f"{title}. {description}")


def _label_room(labels: Sequence[str]) -> float:
    """Inches left of the axes for the longest label (9 pt DejaVu Sans: ~0.075 in a
    character). Fixed margins instead of a layout engine: a layout pass costs a second
    drawing of the whole figure."""
    return 0.25 + 0.075 * max((len(label) for label in labels), default=4)


def _axes(figure: Figure, *, left: float, bottom: float, top: float) -> Axes:
    """One axes with margins in inches (a right margin for the value labels)."""
    width, height = figure.get_size_inches()
    left = min(left, width * 0.45)
    return figure.add_axes(
        (
            left / width,
            bottom / height,
            1 - (left + 0.2) / width,
            1 - (bottom + top) / height,
        )
    )


def _zip_bars(groups: Sequence[str], one: Series) -> list[Bar]:
    return [Bar(group, value) for group, value in zip(groups, one.values, strict=True)]


def _check_id(chart_id: str) -> None:
    if not CHART_ID.match(chart_id):
        raise ValueError(f"chart id {chart_id!r} must match {CHART_ID.pattern}")


def _hatch(patch: Rectangle) -> None:
    patch.set_facecolor("none")
    patch.set_edgecolor(SUPPRESSED_EDGE)
    patch.set_hatch("//")
    patch.set_linestyle("--")
    patch.set_linewidth(1.0)


def _draw_suppressed_h(
    axes: Axes, container: BarContainer, suppressed: list[int], suppression: Suppression
) -> None:
    for index in suppressed:
        patch = container.patches[index]
        patch.set_width(suppression.height)
        _hatch(patch)


# A count hidden so that a small one cannot be worked out from the total (not small).
HIDDEN_TEXT = "hidden"


def _bar_text(bar: Bar, value_format: str, suppression: Suppression) -> str:
    if bar.value is not None:
        return value_format.format(bar.value)
    return HIDDEN_TEXT if bar.hidden else suppression.label


def _bound(suppression: Suppression) -> str:
    return suppression.label.removeprefix("fewer than ").strip()


def _label_values_h(
    axes: Axes,
    container: BarContainer,
    bars: Sequence[Bar],
    value_format: str,
    suppression: Suppression,
) -> None:
    for patch, bar in zip(container.patches, bars, strict=True):
        text = _bar_text(bar, value_format, suppression)
        axes.annotate(
            text,
            (patch.get_width(), patch.get_y() + patch.get_height() / 2),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=INK if bar.value is not None else MUTED,
            fontstyle="normal" if bar.value is not None else "italic",
        )


def _tidy(axes: Axes) -> None:
    axes.tick_params(colors=INK, labelsize=9)
    axes.grid(axis="x" if axes.get_xlabel() else "y", color="#d0d0d0", linewidth=0.6)
    axes.set_axisbelow(True)


def _say_empty(axes: Axes) -> None:
    axes.text(0.5, 0.5, "No cases", transform=axes.transAxes, ha="center", va="center", color=MUTED)


def _describe(title: str, bars: Sequence[Bar], value_format: str, suppression: Suppression) -> str:
    parts = [f"{bar.label}: " + _bar_text(bar, value_format, suppression) for bar in bars]
    text = ", ".join(parts) if parts else "no cases"
    return f"{title}. {text}" if title else text


def _svg(figure: Figure, chart_id: str, title: str, description: str) -> str:
    """The figure as one inline `<svg>` element: no XML prolog, ids prefixed with
    `chart_id`, and a <title>/<desc> the root names in aria-labelledby."""
    buffer = io.StringIO()
    with _RENDER_LOCK:
        FigureCanvasSVG(figure)
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "hrcase"})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = _ID.sub(lambda m: f'id="{chart_id}-{m.group(1)}"', text)
    text = _URL_REF.sub(lambda m: f"url(#{chart_id}-{m.group(1)})", text)
    text = _HREF.sub(lambda m: f'{m.group(1)}="#{chart_id}-{m.group(2)}"', text)
    # matplotlib's stylesheet says `*{...}`: inside a page it would reach every element.
    # Both properties inherit in SVG, so the root carries them instead.
    text = text.replace(_GLOBAL_STYLE, "")
    head_end = text.index(">") + 1
    root = text[:head_end].rstrip(">")
    accessible = (
        f'{root} role="img" aria-labelledby="{chart_id}-title {chart_id}-desc"'
        f' class="chart" style="{_GLOBAL_STYLE_RULES}">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
    )
    return accessible + text[head_end:]
