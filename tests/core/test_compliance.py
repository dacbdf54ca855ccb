"""The compliance report's pure core: each measure's status follows the policy feature behind it,
figures come from the events of the period only, incidents' handling times, the audit state,
and the JSON layout stays what docs/compliance.md documents."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from scrapewarden.core.audit import GENESIS, AuditRecord, Verification, chain
from scrapewarden.core.compliance import DISCLAIMER, SCHEMA, build_report, time_to
from scrapewarden.core.event_figures import CHALLENGE_FAILED, CHALLENGE_PASSED, Period, tally_events
from scrapewarden.core.incidents import Actors, Detection, advance, assign, open_incident
from scrapewarden.core.measures import MEASURES, STATUSES, Inputs, assess, changed_settings
from scrapewarden.core.policy import Policy
from scrapewarden.state import summary as state_summary

DAY = 86400.0
T0 = 1_800_000_000.0
PERIOD = Period(T0, T0 + 30 * DAY)
OK = Verification(0, GENESIS, 0)


@dataclass
class Ev:
    """An event as the store returns it (the fields the report reads)."""

    ts: float
    action: str
    reasons: list[str] = field(default_factory=list)
    enforced: bool = True
    path: str = "/users/1"
    user_agent: str = "python-requests/2.31"
    account: str | None = None
    record: str | None = None


def inputs(policy: Policy | None = None, **kw: Any) -> Inputs:
    base: dict[str, Any] = {
        "policy": policy or Policy(),
        "figures": tally_events([], PERIOD),
        "incidents": [],
        "audit": [],
        "verification": OK,
        "period": PERIOD,
        "generated_at": PERIOD.until,
    }
    base.update(kw)
    return Inputs(**base)


def status(rid: str, policy: Policy | None = None, **kw: Any) -> str:
    (measure,) = [m for m in MEASURES if m.id == rid]
    return assess(measure, inputs(policy, **kw)).status


def pol(**data: Any) -> Policy:
    return Policy.model_validate(data)


PROTECTED = {"protected": [{"pattern": "/users/{id}", "sensitivity": 3, "categories": ["name", "photo"]}]}
PARTNER = {
    "name": "Research Lab",
    "key_sha256": hashlib.sha256(b"secret").hexdigest(),
    "requests_per_hour": 100,
    "records_per_day": 2000,
}


def test_the_table_has_every_measure_once_in_order() -> None:
    assert [m.id for m in MEASURES] == [f"R{n}" for n in range(1, 18)]
    assert all(m.measure and m.answer for m in MEASURES)


# -- each feature flips its measure --------------------------------------------------------------


@pytest.mark.parametrize(
    ("rid", "without", "with_", "expect_without", "expect_with"),
    [
        ("R1", {}, PROTECTED, "partly", "on"),
        ("R2", {"incidents": {"enabled": False}}, {"incidents": {"team": "trust-and-safety"}}, "off", "on"),
        ("R2", {}, {"incidents": {"team": "trust-and-safety"}}, "partly", "on"),
        ("R3", {}, PROTECTED, "off", "partly"),
        ("R3", PROTECTED, {**PROTECTED, "identity": {"account_header": "X-User"}}, "partly", "on"),
        (
            "R4",
            {**PROTECTED, "identity": {"account_header": "x-user"}},
            {**PROTECTED, "identity": {"account_header": "x-user", "account_created_header": "x-created"}},
            "partly",
            "on",
        ),
        ("R4", {}, {**PROTECTED, "identity": {"account_created_header": "x-created"}}, "off", "on"),
        (
            "R5",
            {
                "client": {
                    k: 0
                    for k in (
                        "bot_user_agents",
                        "ai_crawlers",
                        "headless",
                        "inconsistent_browser",
                        "no_assets",
                        "fleet_no_assets",
                    )
                },
                "reputation": {"datacenter": 0, "vpn": 0, "tor": 0},
            },
            {},
            "off",
            "on",
        ),
        ("R5", {"client": {"headless": 0}}, {}, "partly", "on"),
        ("R6", {"actions": {"bans": {"enabled": False}}}, {}, "partly", "on"),
        (
            "R6",
            {"actions": {"bans": {"enabled": False}}, "thresholds": {"challenge": 80, "block": 80}},
            {},
            "off",
            "on",
        ),
        (
            "R7",
            {},
            {"incidents": {"notices": {"organisation": "Example Ltd", "contact_email": "dpo@example.org"}}},
            "partly",
            "on",
        ),
        ("R7", {"incidents": {"enabled": False}}, {}, "off", "partly"),
        ("R8", {}, {"incidents": {"people": {"source": "csv", "path": "people.csv"}}}, "partly", "on"),
        ("R8", {"incidents": {"enabled": False}}, {}, "off", "partly"),
        ("R9", {}, PROTECTED, "partly", "on"),
        ("R10", {}, {"actions": {"help_url": "https://example.org/help"}}, "partly", "on"),
        ("R13", {"client": {"ai_crawlers": 0}}, {}, "off", "partly"),
        ("R15", {}, {"identity": {"partners": [PARTNER]}}, "off", "on"),
        ("R17", {}, {"actions": {"help_url": "https://example.org/help"}}, "partly", "on"),
        ("R17", {}, {"mode": "observe"}, "partly", "on"),
    ],
)
def test_a_policy_feature_flips_its_measure(
    rid: str, without: dict[str, Any], with_: dict[str, Any], expect_without: str, expect_with: str
) -> None:
    assert status(rid, pol(**without)) == expect_without
    assert status(rid, pol(**with_)) == expect_with


def test_r2_is_on_when_people_with_responder_roles_exist() -> None:
    assert status("R2") == "partly"
    assert status("R2", roles={"viewer": 3}) == "partly"
    assert status("R2", roles={"analyst": 1}) == "on"


def test_observe_mode_caps_enforcing_measures_at_partly() -> None:
    full = {**PROTECTED, "identity": {"account_header": "x-user", "partners": [PARTNER]}}
    enforcing = {m.id for m in MEASURES if m.enforcing}
    assert enforcing == {"R3", "R4", "R5", "R6", "R9", "R15"}
    for rid in ("R3", "R5", "R6", "R9", "R15"):
        assert status(rid, pol(**full)) == "on"
        measure = next(m for m in MEASURES if m.id == rid)
        observed = assess(measure, inputs(pol(**full, mode="observe")))
        assert observed.status == "partly" and any("observe mode" in w for w in observed.why)
    # ...but a measure that does not act on requests keeps its status.
    assert status("R9", pol(**PROTECTED, mode="observe")) == "partly"
    assert status("R11", pol(mode="observe")) == "on"


def test_r16_is_out_of_scope_whatever_the_policy() -> None:
    assert status("R16") == "out of scope"
    assert status("R16", pol(**PROTECTED, mode="observe")) == "out of scope"


def test_why_reads_the_values_from_the_policy() -> None:
    policy = pol(
        **PROTECTED,
        identity={"account_header": "x-user", "partners": [PARTNER]},
        limits={"per_account": {"requests_per_minute": 90, "profiles_per_hour": 33, "profiles_per_day": 222}},
    )
    report = build_report(inputs(policy))
    by_id = {m["id"]: m for m in report["measures"]}
    assert "33 distinct profiles per hour, 222 per day" in " ".join(by_id["R3"]["why"])
    assert by_id["R3"]["settings"]["per_account"]["profiles_per_hour"] == 33
    assert "Research Lab (100/h, 2000 records/day)" in " ".join(by_id["R15"]["why"])
    assert by_id["R1"]["settings"]["protected"][0]["categories"] == ["name", "photo"]


def test_a_broken_audit_chain_turns_r11_off_and_a_short_retention_partly() -> None:
    broken = Verification(4, "a" * 64, 4, 5, "entry 5 was altered (its content does not match its hash)")
    assert status("R11", verification=broken) == "off"
    assert status("R11", pol(privacy={"event_retention_days": 7})) == "partly"
    assert status("R11", pol(privacy={"event_retention_days": 30})) == "on"


def test_r12_needs_a_policy_change_recorded_in_the_period() -> None:
    before = chain(AuditRecord(T0 - DAY, "alice", "policy.write", "/etc/sw.toml", {"sha256": "0" * 64}), None)
    assert status("R12", audit=[before]) == "partly"
    during = chain(
        AuditRecord(T0 + DAY, "alice", "policy.write", "/etc/sw.toml", {"mode": "enforce"}), before
    )
    assert status("R12", audit=[before, during]) == "on"
    report = build_report(inputs(audit=[before, during]))
    assert [c["seq"] for c in report["audit"]["policy_changes"]] == [2]
    r17 = {m["id"]: m for m in report["measures"]}["R17"]
    assert r17["caught"]["mode_changes"] == [{"seq": 2, "ts": T0 + DAY, "mode": "enforce"}]


def test_changed_settings_names_secrets_but_never_shows_them() -> None:
    policy = pol(
        privacy={"key": "hunter2-hunter2"}, challenge={"key": "k" * 40, "min_bits": 12}, mode="observe"
    )
    changed = changed_settings(policy)
    assert changed == ["challenge.key", "challenge.min_bits", "mode", "privacy.key"]
    text = json.dumps(build_report(inputs(policy)))
    assert "hunter2" not in text and "k" * 40 not in text


# -- figures from the events ------------------------------------------------------------------------


def test_events_are_counted_by_action_and_detector_within_the_period_only() -> None:
    events = [
        Ev(T0 - 1, "block", ["banned (ip)"]),  # before the period
        Ev(
            T0 + 1,
            "block",
            ["ip: 900 distinct records this hour (budget 400)", "bot user agent (python-requests)"],
            record="profile:1",
        ),
        Ev(
            T0 + 2,
            "challenge",
            ["account: 130 distinct records this hour (budget 120)"],
            account="acct-pseudo",
            record="profile:2",
        ),
        Ev(T0 + 3, "challenge", ["address in a hosting network"], enforced=False, record="profile:3"),
        Ev(T0 + 4, CHALLENGE_PASSED, ["pow", "webdriver"]),
        Ev(T0 + 5, CHALLENGE_FAILED, ["pow", "expired"]),
        Ev(
            T0 + 6,
            "throttle",
            ["partner Lab over its contracted quota (2/1 requests per hour, 0/10 records per day)"],
        ),
        Ev(PERIOD.until, "block", ["banned (ip)"]),  # the end is excluded
    ]
    f = tally_events(events, PERIOD)
    assert f.events == 6
    assert dict(f.actions) == {"block": 1, "challenge": 1, "throttle": 1}
    assert dict(f.observed) == {"challenge": 1}
    assert f.detectors["breadth"] == 2 and f.detectors["client.bot_ua"] == 1
    assert f.detectors["reputation.datacenter"] == 1 and "ban" not in f.detectors
    assert dict(f.detector_actors["breadth"]) == {"ip": 1, "account": 1}
    assert dict(f.partners_over_quota) == {"Lab": 1}
    assert f.solve_rate == 1.0 and f.failed == 1 and dict(f.passed_with_signs) == {"webdriver": 1}
    assert (f.record_decisions, f.anonymous_record_decisions) == (3, 2)
    assert (f.first_observed, f.first_enforced, f.last_enforced) == (T0 + 3, T0 + 1, T0 + 6)
    assert f.samples["breadth"][0]["path"] == "/users/1" and len(f.samples["breadth"]) == 2


def test_actions_and_solve_rate_agree_with_events_summary() -> None:
    from scrapewarden.state.base import Event

    events = [
        Event(T0 + i, action, 50.0, enforced, "ip", "GET", "/", reasons=reasons)
        for i, (action, enforced, reasons) in enumerate(
            [
                ("challenge", True, ["no Accept-Language header"]),
                ("challenge", True, ["no user agent"]),
                ("block", False, ["no user agent"]),
                (state_summary.CHALLENGE_PASSED, True, ["nojs"]),
                (state_summary.CHALLENGE_FAILED, True, ["pow", "bad answer"]),
            ]
        )
    ]
    mine = tally_events(events, PERIOD)
    theirs = state_summary.summarize(events)
    assert (CHALLENGE_PASSED, CHALLENGE_FAILED) == (
        state_summary.CHALLENGE_PASSED,
        state_summary.CHALLENGE_FAILED,
    )
    assert dict(mine.actions) | {f"{k}(observe)": v for k, v in mine.observed.items()} == dict(theirs.actions)
    assert mine.solve_rate == theirs.solve_rate == 0.5


# -- incidents ---------------------------------------------------------------------------------------


def incident(opened: float, iid: str = "inc-1") -> Any:
    detection = Detection(
        ts=opened,
        source="live",
        verdict="block",
        actors=Actors(ips=["p1"], networks=["n1"]),
        records=["profile:1", "profile:2"],
    )
    return open_incident(iid, detection, at=opened, by="system")


def test_incident_handling_times_owners_and_stages() -> None:
    a = incident(T0 + 100, "a")
    advance(a, "contained", at=T0 + 700, by="bob")
    advance(a, "assessed", at=T0 + 800, by="bob")
    advance(a, "notified", at=T0 + 3700, by="bob")
    assign(a, owner="bob", team="tns", at=T0 + 150, by="alice")
    b = incident(T0 + 1000, "b")
    advance(b, "closed", at=T0 + 1300, by="carol", note="false alarm")  # skipped straight to closed
    c = incident(T0 + 2000, "c")  # still open
    old = incident(T0 - 10 * DAY, "old")
    advance(old, "closed", at=T0 - 9 * DAY, by="bob")  # closed before the period: not in it
    carried = incident(T0 - 2 * DAY, "carried")  # opened before, still open during the period
    assert (
        time_to(a, "contained") == 600 and time_to(b, "contained") == 300 and time_to(c, "contained") is None
    )
    assert time_to(b, "notified") is None  # closing notifies nobody

    report = build_report(inputs(incidents=[old, carried, a, b, c]))
    inc = report["incidents"]
    assert [x["id"] for x in inc["list"]] == ["carried", "a", "b", "c"]
    assert (inc["total"], inc["opened_in_period"]) == (4, 3)
    assert inc["by_stage"] == {"open": 2, "contained": 0, "assessed": 0, "notified": 1, "closed": 1}
    assert inc["time_to_contain"] == {"count": 2, "median_seconds": 450.0, "max_seconds": 600.0}
    assert inc["time_to_notify"] == {"count": 1, "median_seconds": 3600.0, "max_seconds": 3600.0}
    assert inc["owners"] == {"(unassigned)": 3, "bob": 1}
    by_id = {m["id"]: m for m in report["measures"]}
    assert by_id["R8"]["caught"] == {"incidents": 4, "records_exposed": 8, "notified": 1}
    assert by_id["R2"]["caught"] == {"incidents": 4, "with_owner": 1}


def test_bans_are_counted_from_the_audit_log_without_listing_targets() -> None:
    e1 = chain(AuditRecord(T0 + 1, "system", "ban.add", "ip:203.0.113.9", {"offences": 1}), None)
    e2 = chain(AuditRecord(T0 + 2, "alice", "ban.add", "account:u-77", {}), e1)
    e3 = chain(AuditRecord(T0 + 3, "alice", "ban.remove", "ip:203.0.113.9", {}), e2)
    report = build_report(inputs(audit=[e1, e2, e3]))
    assert report["bans"] == {
        "added": 2,
        "removed": 1,
        "by_kind": {"account": 1, "ip": 1},
        "automatic": 1,
        "by_people": 1,
        "allows_added": 0,
        "allows_removed": 0,
        "allows_by_kind": {},
    }
    assert "203.0.113.9" not in json.dumps({k: v for k, v in report.items() if k != "audit"})


def test_operator_allows_are_counted_with_the_bans_and_monitored_under_r15() -> None:
    """Allows made and lifted in the period (audit log) and the requests they let through that
    would have been refused (events with the operator_allow reason): scraping allowed by an
    operator or a contract stays monitored (R15). Targets are personal data: not listed."""
    before = chain(AuditRecord(T0 - 5, "alice", "allow.add", "ip:198.51.100.1", {}), None)
    e1 = chain(AuditRecord(T0 + 1, "alice", "allow.add", "account:partner-7", {"reason": "contract"}), before)
    e2 = chain(AuditRecord(T0 + 2, "bob", "allow.add", "ip:198.51.100.7", {}), e1)
    e3 = chain(AuditRecord(T0 + 3, "bob", "allow.remove", "ip:198.51.100.7", {}), e2)
    e4 = chain(AuditRecord(T0 + 4, "bob", "ban.add", "ip:203.0.113.9", {}), e3)
    events = [
        Ev(T0 + 10, "allow", ["allowed by an operator (account), overriding block", "banned (ip)"]),
        Ev(T0 + 11, "allow", ["allowed by an operator (account), overriding challenge", "no user agent"]),
        Ev(T0 + 12, "allow", ["allowed by an operator (ip), overriding block"]),
        Ev(T0 + 13, "block", ["no user agent"]),
        Ev(PERIOD.until + 1, "allow", ["allowed by an operator (ip), overriding block"]),  # after it
    ]
    figures = tally_events(events, PERIOD)
    assert figures.operator_allowed == 3
    assert dict(figures.operator_overrides) == {"block": 2, "challenge": 1}
    report = build_report(inputs(audit=[before, e1, e2, e3, e4], figures=figures))
    bans = report["bans"]
    assert (bans["added"], bans["allows_added"], bans["allows_removed"]) == (1, 2, 1)
    assert bans["allows_by_kind"] == {"account": 1, "ip": 1}
    assert report["events"]["operator_allowed"] == {
        "total": 3,
        "by_kind": {"account": 2, "ip": 1},
        "overriding": {"block": 2, "challenge": 1},
    }
    assert "198.51.100.7" not in json.dumps({k: v for k, v in report.items() if k != "audit"})
    r15 = {m["id"]: m for m in report["measures"]}["R15"]
    assert r15["caught"] == {"over_quota": {}, "allows_added": 2, "allows_removed": 1, "operator_allowed": 3}
    # No partners, but allows in use and monitored: partly on, and said why.
    assert r15["status"] == "partly"
    assert "operator allows: 2 made and 1 lifted in the period; 3 request(s)" in " ".join(r15["why"])
    # Nothing allowed in the period: as before, off without partners, on with them.
    assert status("R15", audit=[before]) == "off"
    assert status("R15", pol(identity={"partners": [PARTNER]}), figures=figures) == "on"


# -- the layout -------------------------------------------------------------------------------------


def keys(value: Any, prefix: str = "") -> set[str]:
    """Dotted key paths of nested dicts (lists: their first item's keys, under ``[]``)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(prefix + k)
            out |= keys(v, f"{prefix}{k}.")
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        out |= keys(value[0], f"{prefix}[].")
    return out


STABLE_KEYS = {
    "schema",
    "disclaimer",
    "generated_at",
    "generated_at_iso",
    "period",
    "period.since",
    "period.until",
    "period.since_iso",
    "period.until_iso",
    "period.days",
    "policy",
    "policy.source",
    "policy.sha256",
    "policy.mode",
    "policy.changed_from_defaults",
    "status_counts",
    "status_counts.on",
    "status_counts.partly",
    "status_counts.off",
    "status_counts.out of scope",
    "measures",
    "measures.[].id",
    "measures.[].measure",
    "measures.[].answer",
    "measures.[].status",
    "measures.[].why",
    "measures.[].settings",
    "measures.[].caught",
    "events",
    "events.total",
    "events.decisions",
    "events.observed",
    "events.detectors",
    "events.challenges",
    "events.challenges.issued",
    "events.challenges.passed",
    "events.challenges.refused",
    "events.challenges.solve_rate",
    "events.challenges.passed_by_kind",
    "events.challenges.refused_by_reason",
    "events.operator_allowed",
    "events.operator_allowed.total",
    "events.operator_allowed.by_kind",
    "events.operator_allowed.overriding",
    "events.protected_record_decisions",
    "events.without_account",
    "events.retention_days",
    "events.samples",
    "bans",
    "bans.added",
    "bans.removed",
    "bans.by_kind",
    "bans.automatic",
    "bans.by_people",
    "bans.allows_added",
    "bans.allows_removed",
    "bans.allows_by_kind",
    "incidents",
    "incidents.total",
    "incidents.opened_in_period",
    "incidents.by_stage",
    "incidents.owners",
    "incidents.teams",
    "incidents.time_to_contain",
    "incidents.time_to_notify",
    "incidents.records_exposed",
    "incidents.list",
    "audit",
    "audit.ok",
    "audit.verified",
    "audit.head_seq",
    "audit.head",
    "audit.broken_seq",
    "audit.problem",
    "audit.entries_in_period",
    "audit.by_action",
    "audit.policy_changes",
}


DYNAMIC = (
    "measures.[].settings.",
    "measures.[].caught.",
    "events.decisions.",
    "events.observed.",
    "events.detectors.",
    "events.challenges.passed_by_kind.",
    "events.challenges.refused_by_reason.",
    "events.samples.",
    "bans.by_kind.",
    "bans.allows_by_kind.",
    "events.operator_allowed.by_kind.",
    "events.operator_allowed.overriding.",
    "incidents.owners.",
    "incidents.teams.",
    "incidents.by_stage.",
    "incidents.time_to_contain.",
    "incidents.time_to_notify.",
    "audit.by_action.",
    "audit.policy_changes.[].details.",
)
"""Keys named by the data (actions, detectors, owners...), not by the layout."""

LIST_ITEM_KEYS = {
    "incidents.list.[]." + k
    for k in [
        "id",
        "title",
        "stage",
        "owner",
        "team",
        "opened_at",
        "first_seen",
        "last_seen",
        "addresses",
        "accounts",
        "records",
        "detections",
        "time_to_contain",
        "time_to_notify",
    ]
} | {
    "audit.policy_changes.[]." + k
    for k in ["seq", "ts", "actor", "action", "target", "details", "prev_hash", "hash"]
}


def populated() -> dict[str, Any]:
    a = incident(T0 + 100, "a")
    advance(a, "contained", at=T0 + 700, by="bob")
    change = chain(AuditRecord(T0 + 5, "alice", "policy.write", "/etc/sw.toml", {"sha256": "0" * 64}), None)
    events = [Ev(T0 + 1, "block", ["no user agent"], record="profile:1")]
    return build_report(inputs(incidents=[a], audit=[change], figures=tally_events(events, PERIOD)))


def test_the_json_layout_is_stable() -> None:
    report = populated()
    assert report["schema"] == SCHEMA == "scrapewarden-compliance-1"
    assert report["disclaimer"] == DISCLAIMER and "not legal advice" in DISCLAIMER
    assert "describes" in DISCLAIMER and "events" in DISCLAIMER
    found = {k for k in keys(report) if not k.startswith(DYNAMIC)}
    assert found == STABLE_KEYS | LIST_ITEM_KEYS
    assert set(report["events"]["samples"]["client.empty_ua"][0]) == {
        "ts",
        "action",
        "path",
        "user_agent",
        "account",
        "reason",
    }
    assert set(report["status_counts"]) == set(STATUSES)
    assert set(report["incidents"]["by_stage"]) == {"open", "contained", "assessed", "notified", "closed"}
    assert set(report["incidents"]["time_to_contain"]) == {"count", "median_seconds", "max_seconds"}
    # An empty report has the same layout (lists empty), and is plain JSON.
    empty = build_report(inputs())
    assert {k for k in keys(empty) if not k.startswith(DYNAMIC)} == STABLE_KEYS
    assert json.loads(json.dumps(report)) == report


def test_a_period_must_start_before_it_ends() -> None:
    with pytest.raises(ValueError):
        Period(T0, T0)
