"""The stacked area chart of requests per second: SVG only, areas stacked, gaps drawn as gaps."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from scrapewarden.dashboard import charts
from scrapewarden.dashboard.rate_series import Point

T0 = 1_800_000_000.0
SVG = "{http://www.w3.org/2000/svg}"


def _paths(svg: str) -> list[ElementTree.Element]:
    return ElementTree.fromstring(svg).findall(f"{SVG}path")


def _ys(path: ElementTree.Element) -> list[float]:
    return [float(y) for y in re.findall(r"[\d.]+,([\d.]+)", path.get("d", ""))]


def test_one_area_per_action_stacked_in_order_with_the_actions_colours() -> None:
    points = [Point(T0 + 5 * i, 5, {"allow": 8.0, "block": 2.0}) for i in range(1, 5)]
    svg = charts.stacked_area(
        points, ["allow", "block"], start=T0, end=T0 + 20, title="rates", html_id="rates-chart"
    )
    root = ElementTree.fromstring(svg)  # well-formed XML
    assert root.get("id") == "rates-chart" and root.get("data-steps") == "4"
    allow, block = _paths(svg)
    assert allow.get("fill") == charts.colour("allow") and block.get("fill") == charts.colour("block")
    # allow from the axis up to 80% of the peak, block on top of it up to the peak (y grows down).
    assert max(_ys(allow)) > max(_ys(block)) and min(_ys(allow)) == max(_ys(block))
    assert "10.0/s" in svg  # the peak, on the y axis
    assert "<script" not in svg


def test_a_gap_splits_the_area_and_an_idle_action_draws_nothing() -> None:
    points = [
        Point(T0 + 5, 5, {"allow": 1.0, "throttle": 0.0}),
        Point(T0 + 10, 5, {"allow": 2.0, "throttle": 0.0}),
        Point(T0 + 60, 5, {"allow": 1.0, "throttle": 0.0}),  # nothing from 10 to 55
    ]
    svg = charts.stacked_area(points, ["allow", "throttle"], start=T0, end=T0 + 60, title="t")
    paths = _paths(svg)
    assert len(paths) == 2 and all(p.get("fill") == charts.colour("allow") for p in paths)


def test_titles_and_labels_are_escaped() -> None:
    points = [Point(T0 + 1, 1, {"<b>": 1.0}), Point(T0 + 2, 1, {"<b>": 2.0})]
    svg = charts.stacked_area(points, ["<b>"], start=T0, end=T0 + 2, title='"><script>', html_id='x"y')
    assert "<script>" not in svg and "<b>" not in svg and "&lt;b&gt;" in svg
    ElementTree.fromstring(svg)
    assert "<path" not in charts.stacked_area([], [], start=T0, end=T0 + 1, title="nothing")
