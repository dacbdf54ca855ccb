"""Reading the detector back from a stored reason: every detector's real wording, produced by the
real detector code, must come back as that detector's name (a reworded reason fails here)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from scrapewarden.core.challenge_signals import CODES, evidence_for
from scrapewarden.core.decision import Evidence
from scrapewarden.core.detectors.assets import fleet_from_counts, no_assets_from_counts
from scrapewarden.core.detectors.budgets import breadth_from_counts, rate_evidence
from scrapewarden.core.detectors.enumeration import enumeration_from_fractions
from scrapewarden.core.detectors.traps import trap_evidence
from scrapewarden.core.detectors.velocity import new_account_evidence
from scrapewarden.core.engine import Engine
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import ClientPolicy, NewAccountPolicy, Partner, Policy, ProtectedResource
from scrapewarden.core.reasons import OTHER, detector_of, source_of
from scrapewarden.lists import _lines, client_sanity, ip_reputation

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@dataclass
class Counts:
    """Just the counts the per-actor detectors read (``ActorCounts``)."""

    per_minute: float = 0.0
    pages: int = 0
    assets: int = 0
    trapped_until: float = 0.0
    seen_minute: float = 0.0
    seen_hour: float = 0.0
    seen_day: float = 0.0


def facts(ua: str, headers: list[tuple[str, str]], ip: str = "192.0.2.10", **kw: object) -> RequestFacts:
    return RequestFacts(
        now=1000.0,
        ip=ip,
        headers=tuple(headers),
        user_agent=ua,
        **kw,  # type: ignore[arg-type]
    )


def browser(ua: str, *, language: bool = True, host_first: bool = True) -> list[tuple[str, str]]:
    headers = [("accept", "text/html,*/*;q=0.8"), ("accept-encoding", "gzip, deflate, br")]
    if language:
        headers.append(("accept-language", "en-GB,en;q=0.5"))
    headers.append(("user-agent", ua))
    return [("host", "site.example"), *headers] if host_first else [*headers, ("host", "site.example")]


def client_findings() -> list[Evidence]:
    sanity = client_sanity(Policy(deny={"user_agents": ["evilbot"]}))  # type: ignore[arg-type]
    out: list[Evidence] = []
    for ua, headers in [
        ("", [("host", "site.example")]),
        ("GPTBot/1.1 (+https://openai.com/gptbot)", browser("GPTBot/1.1")),
        ("Mozilla/5.0 HeadlessChrome/120.0.0.0 Safari/537.36", browser("HeadlessChrome")),
        ("python-requests/2.31.0", browser("python-requests/2.31.0")),
        ("evilbot/1.0", browser("evilbot/1.0")),
        (FIREFOX, browser(FIREFOX, language=False)),
        (FIREFOX, browser(FIREFOX, host_first=False)),
        (FIREFOX, [*browser(FIREFOX), ("sec-ch-ua", '"Chromium";v="131"')]),
    ]:
        out.extend(sanity.check(facts(ua, headers)))
    return out


def reputation_findings() -> list[Evidence]:
    policy = Policy(reputation={"extra_lists": {"partners' abusers": ["198.51.100.0/24"]}})  # type: ignore[arg-type]
    reputation = ip_reputation(policy)
    out = reputation.check("198.51.100.7")
    for folder, name in [
        ("tor-exit-nodes", "exits.txt.gz"),
        ("lord-alfred-ipranges", "protonvpn.txt"),
        ("client9-ipcat", "datacenters.txt.gz"),
    ]:
        first = next(line for line in _lines(folder, name) if line.strip())
        out.extend(reputation.check(str(ipaddress.ip_network(first.strip(), strict=False)[0])))
    return out


def counter_findings() -> list[Evidence | None]:
    limits = Policy().limits.per_account
    young = NewAccountPolicy()
    return [
        rate_evidence("ip", 1000, Policy().limits.per_ip),
        breadth_from_counts("account", 900, 1000, limits),
        breadth_from_counts("session", 10, 5000, Policy().limits.per_session),
        enumeration_from_fractions("ip", 20, 0.95, 1.0),
        enumeration_from_fractions("fingerprint", 20, 0.1, 0.95),
        no_assets_from_counts("network", 40, 0, 15),
        fleet_from_counts(100, 0, 50),
        trap_evidence("/.env", frozenset({"/.env"}), Counts(), 10.0, 90),
        trap_evidence("/", frozenset({"/.env"}), Counts(trapped_until=20.0), 10.0, 90),
        new_account_evidence(Counts(seen_minute=200, seen_hour=200), 120.0, young),
        *evidence_for(tuple(sorted(CODES)), ClientPolicy()),
    ]


def engine_findings() -> list[Evidence]:
    key = "k" * 32
    import hashlib

    policy = Policy(
        protected=[ProtectedResource(pattern="/users/{id}")],
        deny={"networks": ["203.0.113.0/24"]},  # type: ignore[arg-type]
        identity={  # type: ignore[arg-type]
            "partners": [
                Partner(
                    name="Research Lab",
                    key_sha256=hashlib.sha256(key.encode()).hexdigest(),
                    requests_per_hour=1,
                )
            ]
        },
        challenge={"under_attack": True},  # type: ignore[arg-type]
        allow={"accounts": ["friend"]},  # type: ignore[arg-type]
    )
    engine = Engine(policy, client=client_sanity(policy), reputation=ip_reputation(policy))
    engine.bans.add("ip", "192.0.2.66", 10_000.0)
    out: list[Evidence] = []
    for f in [
        facts(FIREFOX, browser(FIREFOX), ip="192.0.2.66"),  # banned
        facts(FIREFOX, browser(FIREFOX), ip="203.0.113.5"),  # deny list
        facts(FIREFOX, browser(FIREFOX), api_key=key),
        facts(FIREFOX, browser(FIREFOX), api_key=key),  # over the partner's quota
        facts(FIREFOX, browser(FIREFOX), malformed=("bad utf-8 in path",)),  # and under attack
        facts(FIREFOX, browser(FIREFOX), account_id="friend"),
        facts(FIREFOX, browser(FIREFOX), extra={"clearance": "pow"}),
        facts("Googlebot/2.1 (+http://www.google.com/bot.html)", browser("Googlebot/2.1"), ip="192.0.2.99"),
    ]:
        out.extend(engine.decide(f).evidence)
    return out


def test_every_detector_reason_reads_back_as_its_detector() -> None:
    findings = [
        e for e in [*client_findings(), *reputation_findings(), *counter_findings(), *engine_findings()] if e
    ]
    produced = {e.detector.split(":")[0] for e in findings}
    # The test covers what it claims to: each detector family produced a real finding.
    assert {
        "client.empty_ua",
        "client.ai_crawler",
        "client.headless",
        "client.bot_ua",
        "client.deny_ua",
        "client.missing_accept_language",
        "client.header_order",
        "client.inconsistent_browser",
        "reputation.list",
        "reputation.tor",
        "reputation.datacenter",
        "rate",
        "breadth",
        "enumeration",
        "client.no_assets",
        "client.fleet_no_assets",
        "trap",
        "new_account",
        "ban",
        "deny",
        "partner",
        "partner.quota",
        "malformed",
        "under_attack",
        "allow",
        "client.spoofed_crawler",
    } <= produced, produced
    assert {f"challenge.{code}" for code in CODES} <= produced
    for e in findings:
        assert detector_of(e.reason) == e.detector.split(":")[0], e


def test_the_actor_and_the_partner_are_read_too() -> None:
    limits = Policy().limits.per_account
    breadth = breadth_from_counts("account", 900, 1000, limits)
    assert breadth is not None and source_of(breadth.reason).actor == "account"
    quota = [e for e in engine_findings() if e.detector == "partner.quota"]
    assert quota and source_of(quota[0].reason).partner == "Research Lab"


def test_unknown_wording_is_other() -> None:
    assert detector_of("something an older version said") == OTHER
    assert detector_of("") == OTHER
