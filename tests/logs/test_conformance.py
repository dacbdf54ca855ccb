"""Conformance: one log through the batch analyzer and through the live engine, same verdicts.

The live engine scores request by request in sliding windows; the analyzer computes the same
detectors over the whole log. For every address in a log with people, a sequential walker, a
wide random walker, a scraper spread over a /24, self-declared bots (one that keeps going and is
banned live, one that stops early), a verified crawler and an impostor, both must reach the
same verdict. (The analyzer's campaigns have no live counterpart and are left out of this log.)"""

from __future__ import annotations

import random
from pathlib import Path

from scrapewarden.logs.analyzer import analyze
from scrapewarden.logs.fallback import parse_line
from scrapewarden.logs.live import replay
from scrapewarden.warden import build_engine

from .conftest import GOOGLEBOT, POLICY, START, line, people, write


def _log(tmp_path: Path, rng: random.Random) -> Path:
    entries = people(rng, 150)
    t = START + 600
    for i in range(900):  # sequential walker, python-requests
        t += rng.uniform(0.5, 1.5)
        entries.append((t, line("198.51.100.10", t, f"/users/{20000 + i}", "python-requests/2.32.3")))
    t = START + 900
    for _ in range(1500):  # wide random walker with a browser user agent, no assets
        t += rng.uniform(0.5, 2.0)
        ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
        entries.append((t, line("198.51.100.11", t, f"/users/{rng.randint(1, 400000)}", ua)))
    t = START + 1200
    for _ in range(3000):  # one /24, ten addresses, random ids
        t += rng.uniform(0.3, 1.0)
        ip = f"203.0.113.{rng.randint(1, 10)}"
        entries.append(
            (t, line(ip, t, f"/users/{rng.randint(1, 400000)}", "Scrapy/2.11 (+https://scrapy.org)"))
        )
    for i in range(40):  # a declared SEO crawler that keeps going: banned live after 20 challenges
        t = START + 3000 + i * 20
        entries.append((t, line("192.0.2.50", t, f"/users/{rng.randint(1, 400000)}", "AhrefsBot/7.0")))
    for i in range(8):  # one that stops early: challenged, never banned
        t = START + 5000 + i * 20
        entries.append((t, line("192.0.2.51", t, f"/users/{rng.randint(1, 400000)}", "SemrushBot/7")))
    for i in range(400):  # verified googlebot and an impostor
        t = START + 100 + i * 9
        entries.append((t, line("66.249.66.1", t, f"/users/{rng.randint(1, 400000)}", GOOGLEBOT)))
        entries.append((t + 2, line("192.0.2.99", t + 2, f"/users/{rng.randint(1, 400000)}", GOOGLEBOT)))
    return write(tmp_path / "conformance.log", entries)


def test_batch_and_live_agree_on_every_address(tmp_path: Path, rng: random.Random) -> None:
    log = _log(tmp_path, rng)
    batch = analyze([log], POLICY)
    rows = [r for r in (parse_line(text) for text in log.read_text().splitlines()) if r is not None]
    live = replay(rows, build_engine(POLICY))
    disagreements = {
        ip: (v.verdict, live.verdict(ip))
        for ip, v in batch.addresses.items()
        if v.verdict != live.verdict(ip)
    }
    assert disagreements == {}
    verdicts = {ip: v.verdict for ip, v in batch.addresses.items()}
    assert verdicts["198.51.100.10"] == "scraper"
    assert verdicts["198.51.100.11"] == "scraper"
    assert {verdicts[f"203.0.113.{i}"] for i in range(1, 11) if f"203.0.113.{i}" in verdicts} == {"scraper"}
    assert verdicts["192.0.2.50"] == "scraper"
    assert verdicts["192.0.2.51"] == "suspicious"
    assert verdicts["66.249.66.1"] == "verified_bot"
    assert verdicts["192.0.2.99"] == "scraper"
    assert sum(v == "human" for v in verdicts.values()) == 150
