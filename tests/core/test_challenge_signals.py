"""The browser report posted with a challenge answer, and what the engine makes of it."""

import json

import pytest

from scrapewarden.core.challenge_signals import CODES, evidence_for, parse_codes, read_report
from scrapewarden.core.decision import Action
from scrapewarden.core.engine import Engine
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import ClientPolicy, Policy

PERSON = {
    "webdriver": False,
    "headless_ua": False,
    "headless_brand": False,
    "languages": 2,
    "screen": [1440, 900],
}
T0 = 1_800_000_000.0
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)


def report(**changes):
    return json.dumps({**PERSON, **changes})


@pytest.mark.parametrize(
    ("raw", "codes"),
    [
        (report(), ()),
        (report(webdriver=True), ("webdriver",)),
        (report(headless_ua=True), ("headless",)),
        (report(headless_brand=True), ("headless",)),
        (
            report(webdriver=True, headless_ua=True, languages=0, screen=[0, 0]),
            ("webdriver", "headless", "no_languages", "no_screen"),
        ),
        # Only exactly true counts: a truthy string is not the browser's boolean.
        (report(webdriver="yes"), ()),
        (None, ("no_signals",)),
        ("", ("no_signals",)),
        ("[1, 2]", ("no_signals",)),
        ("{broken", ("no_signals",)),
        (report(padding="x" * 5000), ("no_signals",)),  # over the size bound: not parsed
    ],
)
def test_read_report(raw, codes):
    assert read_report(raw) == codes


def test_parse_codes_drops_what_it_does_not_know():
    assert parse_codes("webdriver,rootkit,,no_screen") == ("webdriver", "no_screen")
    assert parse_codes("") == ()


def test_evidence_weights_come_from_the_policy_and_zero_means_off():
    weights = ClientPolicy(challenge_automation=70, challenge_anomaly=0, challenge_no_report=33)
    found = evidence_for(("webdriver", "no_screen", "no_signals"), weights)
    assert [(e.detector, e.weight) for e in found] == [
        ("challenge.webdriver", 70),
        ("challenge.no_signals", 33),
    ]
    assert all(e.reason for e in found)
    assert {e.detector.split(".", 1)[1] for e in evidence_for(tuple(sorted(CODES)), ClientPolicy())} == CODES


def browser_facts(now, **extra):
    headers = (
        ("host", "127.0.0.1"),
        ("user-agent", CHROME),
        ("accept", "text/html"),
        ("accept-language", "en"),
        ("accept-encoding", "gzip"),
    )
    return RequestFacts(
        now=now, ip="198.51.100.7", path="/people/1", user_agent=CHROME, headers=headers, extra=dict(extra)
    )


def test_engine_adds_the_codes_only_for_a_cleared_client():
    engine = Engine(Policy())
    plain = engine.decide(browser_facts(T0, clearance_signals="webdriver"))  # no clearance: ignored
    assert not any(e.detector.startswith("challenge.") for e in plain.evidence)
    flagged = engine.decide(browser_facts(T0 + 1, clearance="pow", clearance_signals="webdriver"))
    assert [e.detector for e in flagged.evidence if e.detector.startswith("challenge.")] == [
        "challenge.webdriver"
    ]
    # Automation alone puts the client in the challenge band, and the clearance does not lift it.
    assert flagged.action is Action.CHALLENGE


def test_a_clean_clearance_still_lifts_a_challenge_and_a_flagged_one_does_not():
    # Under attack every uncleared visitor is challenged; a clean clearance lets the person in.
    engine = Engine(Policy(challenge={"under_attack": True}))
    assert engine.decide(browser_facts(T0)).action is Action.CHALLENGE
    assert engine.decide(browser_facts(T0 + 1, clearance="pow")).action is Action.ALLOW
    weak = engine.decide(browser_facts(T0 + 2, clearance="pow", clearance_signals="no_languages"))
    # 25 is below the challenge threshold on its own; under attack the weak clearance still
    # counts as "cleared" for the under-attack rule, but the anomaly stays on record.
    assert weak.action is Action.ALLOW
    assert any(e.detector == "challenge.no_languages" for e in weak.evidence)
