"""The live path's incident counting: thresholds, bounds, once per interval, pseudonyms."""

from __future__ import annotations

from scrapewarden.core.decision import Action, Decision, Evidence
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.incident_watch import IncidentWatch
from scrapewarden.core.policy import Policy
from scrapewarden.core.pseudonym import Pseudonymizer

NOW = 1_800_000_000.0
KEY = b"k" * 32


def watch(**incidents: object) -> IncidentWatch:
    policy = Policy(incidents={"min_records": 3, "interval_seconds": 60, **incidents})  # type: ignore[arg-type]
    return IncidentWatch(policy, Pseudonymizer(KEY))


def facts(ip: str = "203.0.113.9", t: float = 0.0, **kw: object) -> RequestFacts:
    return RequestFacts(now=NOW + t, ip=ip, user_agent="curl/8", **kw)  # type: ignore[arg-type]


def served(w: IncidentWatch, ip: str, ids: range, t: float = 0.0) -> None:
    for i in ids:
        w.note(facts(ip, t), Decision(Action.ALLOW, 0.0, record=("profile", str(i))), lambda: "")


def blocked(w: IncidentWatch, ip: str, t: float = 0.0, actor: str = "ip", **kw: object) -> None:
    evidence = [Evidence("breadth", 80.0, "too many profiles", actor)]
    w.note(facts(ip, t, **kw), Decision(Action.BLOCK, 90.0, evidence, record=("profile", "x")), lambda: "fp1")


def test_a_block_after_enough_records_is_reported_once_per_interval() -> None:
    w = watch()
    served(w, "203.0.113.9", range(5))
    blocked(w, "203.0.113.9", account_id="42")
    (d,) = map(w.detection, w.due(NOW + 1))
    p = Pseudonymizer(KEY)
    assert d.records == [f"profile:{i}" for i in range(5)]  # the refused one was not served
    assert d.actors.ips == [p.ip("203.0.113.9")] and d.actors.accounts == [p.account("42")]
    assert d.actors.networks == [p.network("203.0.113.9")] and d.actors.fingerprints == ["fp1"]
    assert d.detectors == {"breadth": ["too many profiles"]} and d.verdict == "block"
    assert d.samples[0]["ip"] == p.ip("203.0.113.9") and d.campaign == ""
    blocked(w, "203.0.113.9", t=10)
    assert w.due(NOW + 30) == []  # news, but within the interval
    (again,) = map(w.detection, w.due(NOW + 62))
    assert again.requests == 1  # only what is new since the last report
    assert w.due(NOW + 200) == []  # nothing new


def test_thresholds() -> None:
    w = watch()
    served(w, "192.0.2.1", range(2))
    blocked(w, "192.0.2.1")
    assert w.due(NOW) == []  # blocked, but served fewer than min_records
    w.note(facts("192.0.2.2"), Decision(Action.CHALLENGE, 50.0, [Evidence("rate", 50.0, "fast")]), lambda: "")
    served(w, "192.0.2.2", range(10))
    assert w.due(NOW + 1) == []  # challenged, never blocked
    blocked(w, "192.0.2.3", actor="fingerprint")  # judged as one fingerprint: a campaign
    (d,) = map(w.detection, w.due(NOW + 2))
    assert d.campaign == "fingerprint:fp1"
    assert watch(on_campaign=False).due(NOW) == []


def test_observe_mode_decisions_count_as_served() -> None:
    w = watch()
    for i in range(3):
        w.note(
            facts(), Decision(Action.BLOCK, 90.0, [], enforced=False, record=("profile", str(i))), lambda: ""
        )
    (d,) = map(w.detection, w.due(NOW))
    assert d.records == ["profile:0", "profile:1", "profile:2"]


def test_memory_is_bounded() -> None:
    w = watch(remember_records=4, remember_addresses=2, min_records=0)
    served(w, "192.0.2.1", range(10))
    assert w._records("192.0.2.1") == ["profile:6", "profile:7", "profile:8", "profile:9"]
    for i in range(5):
        blocked(w, f"198.51.100.{i}")
        served(w, f"198.51.100.{i}", range(1))
    assert list(w._suspects) == ["198.51.100.3", "198.51.100.4"]
    assert list(w._served) == ["198.51.100.3", "198.51.100.4"]


def test_final_reports_ignore_the_interval_and_disabled_reports_nothing() -> None:
    w = watch(min_records=0)
    blocked(w, "192.0.2.1")
    assert len(w.due(NOW)) == 1
    blocked(w, "192.0.2.1", t=1)
    assert w.due(NOW + 2) == [] and len(w.due(NOW + 2, final=True)) == 1
    off = watch(enabled=False, min_records=0)
    blocked(off, "192.0.2.1")
    assert off.due(NOW) == []


def test_refusal_sets_which_action_counts_as_stopping_an_actor() -> None:
    def throttled(w: IncidentWatch) -> IncidentWatch:
        served(w, "192.0.2.5", range(4))
        evidence = [Evidence("account_age", 40.0, "new account reading many profiles")]
        w.note(
            facts("192.0.2.5"), Decision(Action.THROTTLE, 40.0, evidence, record=("profile", "9")), lambda: ""
        )
        return w

    assert throttled(watch()).due(NOW) == []  # the default: only a block counts
    assert throttled(watch(refusal="challenge")).due(NOW) == []
    (d,) = map((w := throttled(watch(refusal="throttle"))).detection, w.due(NOW))
    assert d.records == [f"profile:{i}" for i in range(4)] and d.verdict == "suspicious"
    assert watch(refusal="throttle", on_block=False).due(NOW) == []
