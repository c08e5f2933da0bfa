"""The dashboard's SVG charts (services/intake/adapters/charts.py): valid SVG with a title
and description, suppressed figures drawn as an outline that carries no count, identical
bytes for identical figures (also in another process and across threads), ids that do not
collide when several charts share a page."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.intake.adapters.charts import (
    Bar,
    Series,
    Suppression,
    bar_chart,
    column_chart,
    counts_suppression,
    grouped_bar_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
FEWER = counts_suppression(5)
CATEGORIES = [Bar("Payroll query", 12), Bar("Harassment complaint", None), Bar("Grievance", 7)]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")]


def hatched_paths(root: ET.Element) -> list[ET.Element]:
    """The outlines drawn for suppressed figures: matplotlib fills a hatch with a pattern."""
    return [p for p in root.iter(f"{SVG}path") if "url(#" in (p.get("style") or "")]


def bar_extent(root: ET.Element, index: int) -> float:
    """The horizontal extent of the `index`th bar (patch) path of a horizontal bar chart."""
    groups = [g for g in root.iter(f"{SVG}g") if re.search(r"-patch_\d+$", g.get("id", ""))]
    # patch_1 is the figure, patch_2 the axes' background; bars follow in order.
    path = groups[2 + index].find(f"{SVG}path")
    assert path is not None
    xs = [float(x) for x in re.findall(r"([0-9.]+) [0-9.]+", path.get("d", ""))]
    return max(xs) - min(xs)


def test_a_chart_is_one_valid_svg_element_with_a_title_and_description() -> None:
    svg = bar_chart(
        "chart-by-category", "Cases by category", CATEGORIES, axis_label="cases", suppression=FEWER
    )
    assert svg.startswith("<svg") and "<?xml" not in svg and "<!DOCTYPE" not in svg
    assert "<style" not in svg  # no stylesheet that would reach the rest of the page
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == "Cases by category"
    assert desc is not None
    assert desc.text == (
        "Cases by category. Payroll query: 12, Harassment complaint: fewer than 5, Grievance: 7"
    )
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert {"Payroll query", "Harassment complaint", "Grievance", "12", "7"} <= set(texts(root))


def test_a_suppressed_bar_is_an_outline_to_the_threshold_and_says_fewer_than_5() -> None:
    hidden = parse(bar_chart("chart-a", "t", CATEGORIES, axis_label="cases", suppression=FEWER))
    assert "fewer than 5" in texts(hidden)
    assert len(hatched_paths(hidden)) == 1
    # Its length is the threshold's: the same as a shown bar of exactly 5, whatever the
    # hidden count was (the chart is never given it).
    five = parse(
        bar_chart(
            "chart-a",
            "t",
            [Bar("Payroll query", 12), Bar("Harassment complaint", 5), Bar("Grievance", 7)],
            axis_label="cases",
            suppression=FEWER,
        )
    )
    assert bar_extent(hidden, 1) == pytest.approx(bar_extent(five, 1))
    assert bar_extent(hidden, 1) < bar_extent(hidden, 0)
    assert bar_extent(hidden, 0) == pytest.approx(bar_extent(five, 0))
    assert hatched_paths(five) == []
    # Its words are the only difference: "fewer than 5" where the shown bar says "5"
    # (same axis, same ticks, no other number).
    shown = texts(five)
    shown[shown.index("5", shown.index("Grievance"))] = "fewer than 5"
    assert texts(hidden) == shown


def test_a_suppressed_week_and_a_suppressed_statistic() -> None:
    weeks = parse(
        column_chart(
            "chart-weeks",
            "Per week",
            [Bar("02 Nov", 9), Bar("09 Nov", None), Bar("16 Nov", 0)],
            axis_label="cases",
            suppression=FEWER,
        )
    )
    assert "<5" in texts(weeks) and len(hatched_paths(weeks)) == 1
    sla = parse(
        grouped_bar_chart(
            "chart-sla",
            "SLA met",
            ["HR Operations", "Investigations"],
            [Series("First response", (92.5, None)), Series("Resolution", (80.0, None))],
            axis_label="% met",
            suppression=Suppression("fewer than 5 cases"),
            value_format="{:.0f}%",
            limit=100,
        )
    )
    assert texts(sla).count("fewer than 5 cases") == 2
    assert {"92%", "80%", "First response", "Resolution"} <= set(texts(sla))
    desc = sla.find(f"{SVG}desc")
    assert desc is not None and "Investigations: fewer than 5 cases" in (desc.text or "")


def test_the_same_figures_give_the_same_bytes_in_threads_and_in_another_process() -> None:
    def draw() -> str:
        # The drawing itself, not the cache of drawings (`_remembered`).
        return bar_chart.__wrapped__(  # type: ignore[attr-defined,no-any-return]
            "chart-a", "t", CATEGORIES, axis_label="cases", suppression=FEWER
        )

    first = draw()
    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(lambda _: draw(), range(8))) == {first}
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from services.intake.adapters.charts import *;"
            "sys.stdout.write(bar_chart('chart-a', 't', [Bar('Payroll query', 12),"
            " Bar('Harassment complaint', None), Bar('Grievance', 7)], axis_label='cases',"
            " suppression=counts_suppression(5)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "random", "PATH": "/usr/bin:/bin"},
    )
    assert other.stdout == first
    assert "dc:date" not in first.lower()


def test_ids_are_the_charts_own_so_charts_share_a_page() -> None:
    a = bar_chart("chart-a", "A", CATEGORIES, axis_label="cases", suppression=FEWER)
    b = bar_chart("chart-b", "B", CATEGORIES, axis_label="cases", suppression=FEWER)
    ids_a = set(re.findall(r'\bid="([^"]+)"', a))
    ids_b = set(re.findall(r'\bid="([^"]+)"', b))
    assert ids_a and not ids_a & ids_b
    assert all(i.startswith("chart-a-") for i in ids_a)
    # Every reference inside a chart points at one of its own ids.
    refs = set(re.findall(r"url\(#([^)]+)\)", a)) | set(re.findall(r'href="#([^"]+)"', a))
    assert refs <= ids_a


def test_no_bars_says_so_and_bad_arguments_are_refused() -> None:
    empty = parse(bar_chart("chart-e", "Empty", [], axis_label="cases", suppression=FEWER))
    assert "No cases" in texts(empty)
    with pytest.raises(ValueError, match="chart id"):
        bar_chart("Bad id!", "t", CATEGORIES, axis_label="cases", suppression=FEWER)
    with pytest.raises(ValueError, match="one value per group"):
        grouped_bar_chart(
            "chart-g", "t", ["a", "b"], [Series("s", (1.0,))], axis_label="x", suppression=FEWER
        )


def test_a_drawing_is_kept_for_the_same_figures() -> None:
    first = bar_chart("chart-k", "Kept", CATEGORIES, axis_label="cases", suppression=FEWER)
    again = bar_chart("chart-k", "Kept", list(CATEGORIES), axis_label="cases", suppression=FEWER)
    assert again is first  # the same string object: not drawn twice
    other = bar_chart("chart-k", "Kept", CATEGORIES[:2], axis_label="cases", suppression=FEWER)
    assert other != first


def test_titles_are_escaped() -> None:
    svg = bar_chart("chart-x", "<b>&", [Bar("<i>", 6)], axis_label="cases", suppression=FEWER)
    root = parse(svg)
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "<b>&"
