"""The HTML report: self-contained, and everything from the log escaped."""

from __future__ import annotations

import random
from pathlib import Path

from scrapewarden.logs.analyzer import analyze
from scrapewarden.logs.html import render_html

from .conftest import POLICY, START, line, people, write

EVIL_UA = "<script>alert(1)</script>'><img src=x onerror=alert(2)> evilbot/1.0"


def test_report_escapes_log_values_and_loads_nothing(tmp_path: Path, rng: random.Random) -> None:
    entries = people(rng, 50)
    for i in range(700):
        t = START + 100 + i
        entries.append((t, line("192.0.2.66", t, f"/users/<b>{i}", EVIL_UA)))
    page = render_html(analyze([write(tmp_path / "a.log", entries)], POLICY))
    assert "<script" not in page.lower()
    assert "onerror=alert" not in page.replace("onerror=alert(2)&gt;", "")  # only as escaped text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;0" in page  # a record id from the log, escaped
    assert "192.0.2.66" in page
    for external in ('src="http', 'href="http', "@import", "url("):
        assert external not in page
    assert "Content-Security-Policy" in page
