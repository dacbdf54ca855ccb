"""Server-rendered SVG charts: no JavaScript, nothing for the Content-Security-Policy to allow.

Only numbers and fixed labels go into the SVG, and every text is escaped anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

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
) -> Markup:
    """Bars over time, one per bucket, stacked by ``order`` (actions). ``starts``: bucket start
    times (epoch seconds), for the axis labels."""
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
        stamp = datetime.fromtimestamp(starts[i], UTC).strftime("%H:%M")
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" class="axis">{stamp}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(order: Sequence[str]) -> Markup:
    items = "".join(
        f'<li><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" '
        f'fill="{colour(a)}"/></svg> {escape(a)}</li>'
        for a in order
    )
    return Markup(f'<ul class="legend">{items}</ul>')
