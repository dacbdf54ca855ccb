"""Server-rendered SVG charts: no JavaScript, nothing for the Content-Security-Policy to allow.

Only numbers and fixed labels go into the SVG, and every text is escaped anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from markupsafe import Markup, escape

ACTION_COLOURS = {
    "throttle": "#c98a00",
    "challenge": "#2a6fdb",
    "block": "#c0392b",
    "challenge_passed": "#2e8b57",
    "challenge_failed": "#7f5aa2",
    "allow": "#5aa469",  # let through by an operator allow despite a refusal (events record no other)
}
OTHER_COLOUR = "#7a7a7a"


def colour(action: str) -> str:
    return ACTION_COLOURS.get(action.removesuffix("(observe)"), OTHER_COLOUR)


def stacked_bars(
    buckets: Sequence[Mapping[str, int]],
    starts: Sequence[float],
    order: Sequence[str],
    *,
    title: str,
    width: int = 720,
    height: int = 200,
    stamp: str = "%H:%M",
) -> Markup:
    """Bars over time, one per bucket, stacked by ``order`` (actions). ``starts``: bucket start
    times (epoch seconds), for the axis labels (``stamp``: their strftime format)."""
    left, bottom, top = 40, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((sum(b.get(a, 0) for a in order) for b in buckets), default=0)
    scale = plot_h / peak if peak else 0.0
    n = max(1, len(buckets))
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.8)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" class="axis">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" class="axis">0</text>',
    ]
    for i, bucket in enumerate(buckets):
        x = left + i * slot + (slot - bar_w) / 2
        y = float(top + plot_h)
        for action in order:
            count = bucket.get(action, 0)
            if not count:
                continue
            h = count * scale
            y -= h
            label = f"{action}: {count}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colour(action)}"><title>{escape(label)}</title></rect>'
            )
    # A few time labels along the bottom.
    for i in range(0, len(starts), max(1, len(starts) // 6)):
        x = left + i * slot
        label = datetime.fromtimestamp(starts[i], UTC).strftime(stamp)
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" class="axis">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(order: Sequence[str]) -> Markup:
    items = "".join(
        f'<li><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" '
        f'fill="{colour(a)}"/></svg> {escape(a)}</li>'
        for a in order
    )
    return Markup(f'<ul class="legend">{items}</ul>')


class Step(Protocol):
    """A value per action held over [start, at] (``rate_series.Point``)."""

    @property
    def start(self) -> float: ...

    @property
    def at(self) -> float: ...

    @property
    def rates(self) -> Mapping[str, float]: ...


def stacked_area(
    steps: Sequence[Step],
    order: Sequence[str],
    *,
    start: float,
    end: float,
    title: str,
    unit: str = "/s",
    width: int = 720,
    height: int = 200,
    html_id: str = "",
) -> Markup:
    """Values over time stacked by ``order`` (bottom up), each step flat over its span; the
    x axis runs from ``start`` to ``end`` (epoch seconds). Neighbouring steps join into one
    area; where one step does not start at the end of the one before, the area breaks (a gap
    in the data is drawn as a gap, not as a slope across it)."""
    left, bottom, top = 48, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    span = max(end - start, 1e-9)
    peak = max((sum(s.rates.get(a, 0.0) for a in order) for s in steps), default=0.0)
    scale = plot_h / peak if peak > 0 else 0.0
    base = top + plot_h

    def x(t: float) -> float:
        return left + min(max((t - start) / span, 0.0), 1.0) * plot_w

    ident = f' id="{escape(html_id)}"' if html_id else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart area"{ident} viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" data-steps="{len(steps)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" class="axis">{peak:.1f}{escape(unit)}</text>',
        f'<text x="{left - 4}" y="{base}" text-anchor="end" class="axis">0</text>',
    ]
    for run in _runs(steps):
        below = [0.0] * len(run)
        for action in order:
            values = [s.rates.get(action, 0.0) for s in run]
            if not any(values):
                continue
            upper = [b + v for b, v in zip(below, values, strict=True)]
            edge = []
            for s, u in zip(run, upper, strict=True):
                y = base - u * scale
                edge += [f"{x(s.start):.1f},{y:.1f}", f"{x(s.at):.1f},{y:.1f}"]
            for s, b in zip(reversed(run), reversed(below), strict=True):
                y = base - b * scale
                edge += [f"{x(s.at):.1f},{y:.1f}", f"{x(s.start):.1f},{y:.1f}"]
            label = f"{action}: up to {max(values):.1f}{unit}"
            parts.append(
                f'<path d="M{" L".join(edge)} Z" fill="{colour(action)}" fill-opacity="0.85">'
                f"<title>{escape(label)}</title></path>"
            )
            below = upper
    stamp = "%H:%M" if span > 600 else "%H:%M:%S"
    for i in range(5):
        t = start + span * i / 4
        anchor = ("start", "middle", "middle", "middle", "end")[i]
        label = datetime.fromtimestamp(t, UTC).strftime(stamp)
        parts.append(
            f'<text x="{x(t):.1f}" y="{height - 6}" text-anchor="{anchor}" class="axis">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _runs(steps: Sequence[Step]) -> list[list[Step]]:
    """``steps`` cut where one does not begin where the one before ended."""
    runs: list[list[Step]] = []
    for step in steps:
        if runs and abs(step.start - runs[-1][-1].at) <= 1e-3:  # the same instant, give or take rounding
            runs[-1].append(step)
        else:
            runs.append([step])
    return runs
