"""What the browser showed while it solved a challenge, turned into evidence.

Passing proof-of-work proves that *a browser* (or a program that hashes) asked, not that a person
did: automation frameworks drive real browsers. So while the challenge page works, its script
collects a few facts about the browser (``navigator.webdriver``, headless markers, languages,
screen) and posts them with the answer. This module reads that report — attacker-controlled
JSON, so it is bounded and never trusted to *lower* suspicion — into short codes that the
clearance token carries. The engine turns the codes back into :class:`Evidence` on every later
request of that client, and a clearance carrying codes no longer exempts the client from further
challenges (see :mod:`.engine`).

Codes:

``webdriver``
    ``navigator.webdriver`` is true: the browser says it is remote-controlled (Selenium,
    Playwright, Puppeteer by default).
``headless``
    The user agent or the client-hint brands name a headless browser.
``no_languages``
    ``navigator.languages`` is empty, which no browser a person uses reports.
``no_screen``
    A zero-sized screen.
``no_signals``
    The proof-of-work was solved but no report came with it (or an unreadable one): the answer
    came from a program that hashes, not from our page in a browser.

A forged report can hide all of these; that costs the scraper the effort of reverse engineering
the page, and the other detectors still apply. What the report cannot do is help a client.
"""

from __future__ import annotations

import json
from typing import Any

from .decision import Evidence
from .policy import ClientPolicy

MAX_REPORT_CHARS = 4096
"""Longer reports are not parsed (ours are about 400 characters)."""

AUTOMATION = ("webdriver", "headless")
ANOMALIES = ("no_languages", "no_screen")
CODES = frozenset((*AUTOMATION, *ANOMALIES, "no_signals"))

REASONS = {
    "webdriver": "the browser said it is remote-controlled (navigator.webdriver) during the challenge",
    "headless": "a headless browser solved the challenge",
    "no_languages": "the browser that solved the challenge reported no languages",
    "no_screen": "the browser that solved the challenge had no screen",
    "no_signals": "the challenge was solved without the page's browser report",
}


def read_report(raw: str | None) -> tuple[str, ...]:
    """Codes for a posted browser report (the ``signals`` form field), in a fixed order."""
    if not raw or len(raw) > MAX_REPORT_CHARS:
        return ("no_signals",)
    try:
        report: Any = json.loads(raw)
    except ValueError:
        return ("no_signals",)
    if not isinstance(report, dict):
        return ("no_signals",)
    found: list[str] = []
    if report.get("webdriver") is True:
        found.append("webdriver")
    if report.get("headless_ua") is True or report.get("headless_brand") is True:
        found.append("headless")
    if report.get("languages") == 0:
        found.append("no_languages")
    screen = report.get("screen")
    if isinstance(screen, list) and len(screen) == 2 and screen[0] == 0 and screen[1] == 0:
        found.append("no_screen")
    return tuple(found)


def parse_codes(text: str) -> tuple[str, ...]:
    """Codes from their comma-joined form (as carried in a token or request facts); unknown
    codes are dropped, so an old or tampered list cannot name anything new."""
    return tuple(code for code in text.split(",") if code in CODES)


def evidence_for(codes: tuple[str, ...], weights: ClientPolicy) -> list[Evidence]:
    """One finding per code, weighted by the policy (``client.challenge_*``)."""
    out: list[Evidence] = []
    for code in codes:
        if code in AUTOMATION:
            weight = weights.challenge_automation
        elif code == "no_signals":
            weight = weights.challenge_no_report
        else:
            weight = weights.challenge_anomaly
        if weight > 0:
            out.append(Evidence("challenge." + code, weight, REASONS[code], "fingerprint"))
    return out
