"""The compliance report (``scrapewarden report compliance --html``) as one self-contained page.

No scripts and no external files (inline CSS only), so the page opens anywhere, prints, can be
mailed, and loads nothing. The report quotes what clients sent (paths, user agents, account
pseudonyms and reasons in the samples, incident titles): Jinja2 autoescaping is on for the
whole template, so all of it is shown as text, never markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from .core.compliance import iso


def render_html(report: Mapping[str, Any]) -> str:
    """The report dict of :func:`scrapewarden.core.compliance.build_report` as an HTML page."""
    env = Environment(
        loader=PackageLoader("scrapewarden", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda ts: iso(ts) or "-"
    env.filters["duration"] = duration
    env.filters["show"] = show
    env.filters["percent"] = lambda rate: "-" if rate is None else f"{rate:.1%}"
    return env.get_template("compliance.html").render(r=report)


def show(value: Any) -> str:
    """A setting or figure as short text: '-' for nothing, yes/no, numbers without noise."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        # Nested settings read as "key: value" pairs (escaped by the template like any text).
        return ", ".join(f"{key}: {show(item)}" for key, item in value.items())
    if isinstance(value, list):
        sep = "; " if any(isinstance(v, dict) for v in value) else ", "
        return sep.join(show(v) for v in value)
    return str(value)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    if total or not parts:
        parts.append(f"{total}s")
    return " ".join(parts[:2])
