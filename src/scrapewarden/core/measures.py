"""The regulators' measures R1-R17 and the check that reads each one's status from the policy.

:data:`MEASURES` is the one table: for each measure, what the regulators ask, what scrapewarden
answers with, and a check that says whether it is ``on``, ``partly`` on, ``off`` or ``out of
scope``, why (in plain words, from the policy's settings), the settings that matter and what
it caught over the period. A measure that acts on requests is at most ``partly`` on in observe
mode (:func:`assess`). docs/compliance.md explains each row.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .audit import AuditEntry, Verification
from .event_figures import EventFigures, Period
from .incidents import STAGES, Incident
from .policy import Policy

Status = Literal["on", "partly", "off", "out of scope"]
STATUSES: tuple[Status, ...] = ("on", "partly", "off", "out of scope")

_SECRET_SETTINGS = frozenset(
    {
        "state",
        "challenge.key",
        "challenge.captcha.secret_key",
        "privacy.key",
        "incidents.people.database",
    }
)
"""Settings whose values may be secrets: the report names them when changed, never shows them."""


# -- what the report is made from -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything a report is computed from (plain values; the adapter reads the store)."""

    policy: Policy
    figures: EventFigures
    incidents: Sequence[Incident]
    """Every incident known; those that do not touch the period are left out of the report."""
    audit: Sequence[AuditEntry]
    """Audit entries (all or those of the period; others are skipped)."""
    verification: Verification
    period: Period
    generated_at: float
    policy_source: str = ""
    """Where the policy was read from (a file, "defaults"), as the adapter says."""
    policy_sha256: str = ""
    state_kind: str = ""
    """The state store's kind: sqlite, redis, memory (never its URL: it may hold a password)."""
    roles: Mapping[str, int] = field(default_factory=dict)
    """Dashboard users per role (admin, analyst, viewer)."""

    def audit_in_period(self, prefix: str = "") -> list[AuditEntry]:
        return [e for e in self.audit if self.period.holds(e.ts) and e.action.startswith(prefix)]

    def incidents_in_period(self) -> list[Incident]:
        """Incidents that were open at some time in the period: opened before it ends and not
        closed before it starts (so opened, handled or still pending during it)."""
        p = self.period
        out = []
        for incident in self.incidents:
            closed = [s.at for s in incident.steps if s.stage == "closed"]
            if incident.opened_at < p.until and (not closed or min(closed) >= p.since):
                out.append(incident)
        return out


@dataclass(frozen=True, slots=True)
class Assessment:
    status: Status
    why: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    caught: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Measure:
    id: str
    measure: str
    """What the regulators ask, paraphrased (docs/compliance.md cites the statement)."""
    answer: str
    """The scrapewarden capability that answers it."""
    check: Callable[[Inputs], Assessment]
    enforcing: bool = False
    """A measure that acts on requests: in observe mode it is at most ``partly`` on."""


# -- the checks, one per measure ------------------------------------------------------------------


def _limits(policy: Policy, kind: str) -> dict[str, int]:
    limits = getattr(policy.limits, f"per_{kind}")
    return {
        "requests_per_minute": limits.requests_per_minute,
        "profiles_per_hour": limits.profiles_per_hour,
        "profiles_per_day": limits.profiles_per_day,
    }


def _client_weights(policy: Policy) -> dict[str, float]:
    c = policy.client
    return {
        "bot_user_agents": c.bot_user_agents,
        "ai_crawlers": c.ai_crawlers,
        "headless": c.headless,
        "inconsistent_browser": c.inconsistent_browser,
        "no_assets": c.no_assets,
        "fleet_no_assets": c.fleet_no_assets,
    }


def _r1(i: Inputs) -> Assessment:
    p = i.policy
    layers = _layers(p)
    protected = [
        {
            "pattern": r.pattern + (f"?{r.query_param}=" if r.query_param else ""),
            "kind": r.kind,
            "sensitivity": r.sensitivity,
            "categories": list(r.categories),
        }
        for r in p.protected
    ]
    why = [f"{len(layers)} layers on: {', '.join(layers)}"]
    if p.protected:
        levels = sorted({r.sensitivity for r in p.protected})
        why.append(
            f"{len(p.protected)} protected resource pattern(s) with sensitivity "
            + "/".join(str(s) for s in levels)
            + " (higher sensitivity uses budgets up faster)"
        )
        status: Status = "on" if len(layers) >= 3 else "partly"
    else:
        why.append(
            "no protected resources: budgets of distinct records per actor count nothing, "
            "and nothing is scaled by sensitivity"
        )
        status = "partly" if layers else "off"
    if i.incidents_in_period() or p.incidents.enabled:
        why.append("procedural: incidents are opened and handled by people (see R2)")
    return Assessment(
        status,
        why,
        {"layers": layers, "protected": protected, "thresholds": p.thresholds.model_dump()},
        {"decisions": dict(sorted(i.figures.actions.items()))},
    )


def _layers(p: Policy) -> list[str]:
    layers = ["request-rate limits per address, network, session, account and client build"]
    if p.protected:
        layers.append("distinct-record budgets, enumeration and new-account velocity")
    if any(_client_weights(p).values()):
        layers.append("client checks (user agents, headless browsers, header consistency)")
    if any((p.reputation.datacenter, p.reputation.vpn, p.reputation.tor)) or p.reputation.extra_lists:
        layers.append("address reputation")
    if p.traps.paths and p.traps.weight > 0:
        layers.append("trap paths")
    if p.thresholds.challenge < p.thresholds.block:
        layers.append("challenges")
    if p.actions.bans.enabled:
        layers.append("automatic bans")
    if p.deny.networks or p.deny.user_agents:
        layers.append("deny lists")
    return layers


def _r2(i: Inputs) -> Assessment:
    p = i.policy.incidents
    incidents = i.incidents_in_period()
    responders = sum(n for role, n in i.roles.items() if role in ("admin", "analyst"))
    owned = sum(1 for x in incidents if x.owner)
    settings = {"incidents_enabled": p.enabled, "team": p.team, "dashboard_users": dict(i.roles)}
    caught = {"incidents": len(incidents), "with_owner": owned}
    if not p.enabled:
        return Assessment(
            "off",
            ["incidents are off ([incidents] enabled = false): detections open nothing for a team to own"],
            settings,
            caught,
        )
    why = ["incidents are opened automatically and carry an owner and a team"]
    if p.team:
        why.append(f"new incidents go to the team {p.team!r}")
    if responders:
        why.append(f"{responders} dashboard user(s) may act on bans and incidents (admin, analyst)")
    if owned:
        why.append(f"{owned} of {len(incidents)} incident(s) in the period have an owner")
    if p.team or responders:
        return Assessment("on", why, settings, caught)
    why.append(
        "no team in [incidents] team and no dashboard users with the admin or analyst role: "
        "nobody is named to respond"
    )
    return Assessment("partly", why, settings, caught)


def _r3(i: Inputs) -> Assessment:
    p = i.policy
    ident = p.identity
    settings = {
        "per_account": _limits(p, "account"),
        "per_ip": _limits(p, "ip"),
        "per_network": _limits(p, "network"),
        "per_session": _limits(p, "session"),
        "account_from": ident.account_header or ident.account_cookie or "",
    }
    f = i.figures
    caught = {
        "breadth": f.detectors["breadth"],
        "rate": f.detectors["rate"],
        "by_actor": {
            name: dict(sorted(f.detector_actors.get(name, Counter()).items())) for name in ("breadth", "rate")
        },
    }
    a = p.limits.per_account
    budgets = (
        f"per-account budgets: {a.profiles_per_hour} distinct profiles per hour, "
        f"{a.profiles_per_day} per day, {a.requests_per_minute} requests per minute"
    )
    if not p.protected:
        return Assessment(
            "off",
            [
                "no protected resources: no profile views are counted, so no "
                "per-account budget of profiles can apply (request rates still do)"
            ],
            settings,
            caught,
        )
    if ident.account_header or ident.account_cookie:
        how = (
            f"header {ident.account_header!r}" if ident.account_header else f"cookie {ident.account_cookie!r}"
        )
        return Assessment(
            "on",
            [
                budgets,
                f"accounts are read from the {how}",
                "per-address, per-network and per-session budgets apply too",
            ],
            settings,
            caught,
        )
    return Assessment(
        "partly",
        [
            budgets + " - but no account header or cookie is set in the policy, so they apply only "
            "if the site passes account ids to the middleware through a callable",
            "per-address, per-network and per-session budgets apply",
        ],
        settings,
        caught,
    )


def _r4(i: Inputs) -> Assessment:
    p = i.policy
    n = p.limits.new_account
    ident = p.identity
    settings = {
        "young_hours": n.young_hours,
        "lookups_per_minute": n.lookups_per_minute,
        "lookups_per_hour": n.lookups_per_hour,
        "account_created_header": ident.account_created_header,
    }
    caught = {"new_account": i.figures.detectors["new_account"]}
    values = (
        f"accounts younger than {n.young_hours:g} h may look up {n.lookups_per_minute} records "
        f"per minute and {n.lookups_per_hour} per hour at sign-up (three times as many by then)"
    )
    if not p.protected:
        return Assessment(
            "off", ["no protected resources: lookups of other users are not counted"], settings, caught
        )
    if ident.account_created_header:
        return Assessment(
            "on",
            [values, f"account age read from the header {ident.account_created_header!r}"],
            settings,
            caught,
        )
    return Assessment(
        "partly",
        [
            values,
            "no account_created_header in the policy: the velocity check "
            "applies only if the site passes the sign-up time through a callable",
        ],
        settings,
        caught,
    )


def _r5(i: Inputs) -> Assessment:
    p = i.policy
    weights = _client_weights(p)
    rep = {
        "datacenter": p.reputation.datacenter,
        "vpn": p.reputation.vpn,
        "tor": p.reputation.tor,
        "extra_lists": sorted(p.reputation.extra_lists),
    }
    settings = {
        "client": weights,
        "reputation": rep,
        "trap_paths": len(p.traps.paths),
        "trap_weight": p.traps.weight,
        "campaign_incidents": p.incidents.enabled and p.incidents.on_campaign,
    }
    f = i.figures
    caught: dict[str, Any] = f.caught(
        "client", "reputation", "trap", "enumeration", "rate", "breadth", "malformed", "deny", "challenge"
    )
    caught["campaign_incidents"] = sum(1 for x in i.incidents_in_period() if x.campaigns)
    on = [name for name, w in weights.items() if w > 0]
    off = [name for name, w in weights.items() if w <= 0]
    why = [f"client checks on: {', '.join(on) or 'none'}"]
    if off:
        why.append(f"client checks weighted 0 (off): {', '.join(off)}")
    rep_on = [k for k in ("datacenter", "vpn", "tor") if rep[k]]
    lists = [*rep_on, *sorted(p.reputation.extra_lists)]
    why.append(f"address reputation lists: {', '.join(lists) or 'none'}")
    why.append(
        f"{len(p.traps.paths)} trap path(s)" if p.traps.weight > 0 and p.traps.paths else "trap paths off"
    )
    if settings["campaign_incidents"]:
        why.append("coordinated campaigns (one client build across many addresses) open incidents")
    full = not off and rep_on and p.traps.paths and p.traps.weight > 0
    status: Status = "on" if full else ("partly" if on or rep_on else "off")
    return Assessment(status, why, settings, caught)


def _r6(i: Inputs) -> Assessment:
    p = i.policy
    b = p.actions.bans
    cap = p.challenge.captcha
    f = i.figures
    bans = i.audit_in_period("ban.")
    settings = {
        "challenge_from_score": p.thresholds.challenge,
        "block_from_score": p.thresholds.block,
        "proof_of_work_bits": [p.challenge.min_bits, p.challenge.max_bits],
        "captcha_provider": cap.provider,
        "under_attack": p.challenge.under_attack,
        "bans": {
            "enabled": b.enabled,
            "blocks_before_ban": b.blocks_before_ban,
            "window_seconds": b.window_seconds,
            "ttl_seconds": b.ttl_seconds,
            "factor": b.factor,
            "max_ttl_seconds": b.max_ttl_seconds,
            "scopes": list(b.scopes),
        },
        "deny_networks": len(p.deny.networks),
    }
    caught = {
        "challenges": f.challenges,
        "challenge_answers_passed": f.passed,
        "challenge_answers_refused": f.failed,
        "solve_rate": f.solve_rate,
        "blocks": f.actions["block"],
        "blocked_by_ban": f.detectors["ban"],
        "bans_added": sum(1 for e in bans if e.action == "ban.add"),
        "bans_removed": sum(1 for e in bans if e.action == "ban.remove"),
    }
    challenges = p.thresholds.challenge < p.thresholds.block or p.challenge.under_attack
    why = []
    if challenges:
        kind = (
            f"proof-of-work, and a {cap.provider} CAPTCHA for the riskiest"
            if cap.provider
            else "proof-of-work (no CAPTCHA provider configured)"
        )
        why.append(f"challenges from score {p.thresholds.challenge:g} to {p.thresholds.block:g}: {kind}")
    else:
        why.append("no challenge band (thresholds.challenge = thresholds.block): nobody is challenged")
    if b.enabled:
        why.append(
            f"automatic bans after {b.blocks_before_ban} refusals in {b.window_seconds} s, "
            f"{b.ttl_seconds} s at first, x{b.factor:g} per repeat up to {b.max_ttl_seconds} s, "
            f"on {', '.join(b.scopes)}"
        )
    else:
        why.append("automatic bans are off ([actions.bans] enabled = false)")
    status: Status = "on" if challenges and b.enabled else ("partly" if challenges or b.enabled else "off")
    return Assessment(status, why, settings, caught)


def _r7(i: Inputs) -> Assessment:
    p = i.policy.incidents
    n = p.notices
    settings = {
        "incidents_enabled": p.enabled,
        "organisation": n.organisation,
        "contact_name": n.contact_name,
        "contact_email": n.contact_email,
        "deletion_days": n.deletion_days,
        "response_days": n.response_days,
    }
    steps = Counter(e.action for e in i.audit_in_period("incident."))
    caught = {"incidents": len(i.incidents_in_period()), "incident_steps": dict(sorted(steps.items()))}
    if not p.enabled:
        return Assessment("off", ["incidents are off: no evidence is gathered for letters"], settings, caught)
    why = [
        "incidents gather evidence (actors, samples, records served) for cease-and-desist "
        "letters and deletion demands; sent letters and confirmations are tracked",
        f"operators are given {n.response_days} day(s) to answer and {n.deletion_days} to confirm deletion",
    ]
    if n.organisation and (n.contact_email or n.contact_address):
        why.append(f"letters are signed for {n.organisation!r}")
        return Assessment("on", why, settings, caught)
    why.append(
        "no sender in [incidents.notices] (organisation and a contact): drafts need one filled in by hand"
    )
    return Assessment("partly", why, settings, caught)


def _r8(i: Inputs) -> Assessment:
    p = i.policy.incidents
    incidents = i.incidents_in_period()
    settings = {
        "incidents_enabled": p.enabled,
        "min_records": p.min_records,
        "people_lookup": p.people.source,
        "default_language": p.notices.default_language,
        "categories_labelled": sum(1 for r in i.policy.protected if r.categories),
    }
    reached = sum(
        1
        for x in incidents
        if STAGES.index(x.stage) >= STAGES.index("notified") and any(s.stage == "notified" for s in x.steps)
    )
    caught = {
        "incidents": len(incidents),
        "records_exposed": sum(x.records_count for x in incidents),
        "notified": reached,
    }
    if not p.enabled:
        return Assessment("off", ["incidents are off: exposed records are not listed"], settings, caught)
    why = [
        f"an incident opens when a blocked actor had been served {p.min_records} or more records, "
        "and lists exactly which"
    ]
    if p.people.source:
        why.append(
            f"records are mapped to the people they belong to ({p.people.source} lookup), "
            "for notices and the breach assessment's deadline clocks"
        )
        return Assessment("on", why, settings, caught)
    why.append(
        "no people lookup ([incidents.people] source): records are listed but not mapped to "
        "people, so notices cannot be drafted per person"
    )
    return Assessment("partly", why, settings, caught)


def _r9(i: Inputs) -> Assessment:
    p = i.policy
    f = i.figures
    settings = {"protected_patterns": [r.pattern for r in p.protected]}
    caught = {
        "protected_record_decisions": f.record_decisions,
        "without_account": f.anonymous_record_decisions,
    }
    if p.protected:
        return Assessment(
            "on",
            [
                f"{len(p.protected)} protected pattern(s) are guarded for every client, "
                "logged in or not: anonymous clients are counted by address, network "
                "and client build"
            ],
            settings,
            caught,
        )
    return Assessment(
        "partly",
        [
            "no protected resources: public pages get the generic checks (rates, "
            "client, reputation) but no per-record budgets"
        ],
        settings,
        caught,
    )


def _r10(i: Inputs) -> Assessment:
    p = i.policy
    settings = {"help_url": p.actions.help_url, "nojs_delay_seconds": p.challenge.nojs_delay_seconds}
    why = [
        "challenge and block pages say in plain words what happened and why",
        "privacy settings for the site's users (hiding profiles from logged-out visitors) are the "
        "site's own; scrapewarden only supplies the hooks",
    ]
    if p.actions.help_url:
        why.append("block pages link to where a person can get help")
        return Assessment("on", why, settings, {})
    why.append("no actions.help_url: a person blocked by mistake is not told where to get help")
    return Assessment("partly", why, settings, {})


def _r11(i: Inputs) -> Assessment:
    v = i.verification
    retention = i.policy.privacy.event_retention_days
    entries = i.audit_in_period()
    settings = {"event_retention_days": retention}
    caught = {"audit_entries_in_period": len(entries), "audit_chain_ok": v.ok}
    why = ["this report: measures, what they caught, incidents and the audit log over the period"]
    if not v.ok:
        why.append(f"the audit chain is BROKEN at entry {v.broken_seq}: {v.problem}")
        return Assessment("off", why, settings, caught)
    why.append(f"audit chain intact: {v.verified} entries verified")
    if i.period.days > retention:
        why.append(
            f"events are kept {retention} day(s), less than the period ({i.period.days:.0f} days): "
            "the first part of the period has no events left"
        )
        return Assessment("partly", why, settings, caught)
    return Assessment("on", why, settings, caught)


def _r12(i: Inputs) -> Assessment:
    changes = i.audit_in_period("policy.")
    settings = {"changed_from_defaults": changed_settings(i.policy)}
    caught = {"policy_changes": len(changes), "detectors_that_fired": len(i.figures.detectors)}
    why = [f"{len(i.figures.detectors)} detector(s) caught something in the period (see what each caught)"]
    if changes:
        why.append(f"{len(changes)} policy change(s) recorded in the audit log in the period")
        return Assessment("on", why, settings, caught)
    why.append("no policy change recorded in the period: review the policy against what was caught")
    return Assessment("partly", why, settings, caught)


def _r13(i: Inputs) -> Assessment:
    w = i.policy.client.ai_crawlers
    settings = {"ai_crawlers_weight": w}
    caught = {"ai_crawler": i.figures.detectors["client.ai_crawler"]}
    if w <= 0:
        return Assessment("off", ["AI crawler user agents are weighted 0 (not recognised)"], settings, caught)
    return Assessment(
        "partly",
        [
            f"AI crawler user agents are recognised (weight {w:g})",
            "every decision is explained by its reasons; there is no learned scoring in this version",
        ],
        settings,
        caught,
    )


def _r14(i: Inputs) -> Assessment:
    kind = i.state_kind or "memory"
    changed = changed_settings(i.policy)
    where = {
        "sqlite": "one SQLite file, no other service to run",
        "memory": "inside the process, no other service to run (nothing kept across restarts)",
    }.get(kind, "a shared store, for several instances")
    why = [
        f"state: {where}",
        f"works with the built-in defaults; {len(changed)} setting(s) changed from them",
    ]
    return Assessment("on", why, {"state": kind, "changed_from_defaults": changed}, {})


def allows_in_period(i: Inputs) -> tuple[list[AuditEntry], list[AuditEntry]]:
    """The operator allows made (``allow.add``) and lifted (``allow.remove``) in the period."""
    entries = i.audit_in_period("allow.")
    return [e for e in entries if e.action == "allow.add"], [e for e in entries if e.action == "allow.remove"]


def _r15(i: Inputs) -> Assessment:
    partners = i.policy.identity.partners
    settings = {
        "partners": [
            {"name": x.name, "requests_per_hour": x.requests_per_hour, "records_per_day": x.records_per_day}
            for x in partners
        ],
        "api_key_header": i.policy.identity.api_key_header,
    }
    allowed, lifted = allows_in_period(i)
    let_through = i.figures.operator_allowed
    caught = {
        "over_quota": dict(sorted(i.figures.partners_over_quota.items())),
        "allows_added": len(allowed),
        "allows_removed": len(lifted),
        "operator_allowed": let_through,
    }
    # Operator allows let an actor (a partner without an API key, a research crawler) through
    # whatever the detectors say; the requests they let through despite a refusal are recorded.
    allows_why = (
        [
            f"operator allows: {len(allowed)} made and {len(lifted)} lifted in the period; "
            f"{let_through} request(s) they let through despite a refusal were recorded"
        ]
        if allowed or lifted or let_through
        else []
    )
    if not partners:
        none = "no partners configured: a client scraping by contract is treated like any other"
        if allows_why:
            return Assessment("partly", [none, *allows_why], settings, caught)
        return Assessment("off", [none], settings, caught)
    return Assessment(
        "on",
        [
            f"{len(partners)} partner(s) identified by API key with contracted quotas: "
            + ", ".join(
                f"{x.name} ({x.requests_per_hour}/h, {x.records_per_day} records/day)" for x in partners
            ),
            "a partner over its quota is throttled and recorded",
            *allows_why,
        ],
        settings,
        caught,
    )


def _r16(i: Inputs) -> Assessment:
    return Assessment(
        "out of scope",
        ["training AI on one's own platform's data is not something scrapewarden can see or control"],
    )


def _r17(i: Inputs) -> Assessment:
    p = i.policy
    f = i.figures
    modes = [
        {"seq": e.seq, "ts": e.ts, "mode": e.details.get("mode")}
        for e in i.audit_in_period("policy.")
        if "mode" in e.details
    ]
    settings = {
        "mode": p.mode,
        "help_url": p.actions.help_url,
        "nojs_delay_seconds": p.challenge.nojs_delay_seconds,
        "captcha_provider": p.challenge.captcha.provider,
    }
    caught = {
        "observe_mode": {
            "decisions": sum(f.observed.values()),
            "first": f.first_observed,
            "last": f.last_observed,
            "by_action": dict(sorted(f.observed.items())),
        },
        "enforced": {
            "decisions": sum(f.actions.values()),
            "first": f.first_enforced,
            "last": f.last_enforced,
        },
        "mode_changes": modes,
        "solve_rate": f.solve_rate,
        "passed_showing_automation": dict(sorted(f.passed_with_signs.items())),
    }
    why = []
    if f.first_observed is not None:
        why.append(
            f"observe mode recorded {sum(f.observed.values())} would-be decision(s) in the period "
            "without acting on them"
        )
    if p.observe:
        why.append("the policy is in observe mode: nobody is refused")
        return Assessment("on", why, settings, caught)
    why.append(
        "challenges have a no-JavaScript path and never ask a person twice while their clearance lasts"
    )
    if f.solve_rate is not None:
        why.append(f"challenge solve rate {f.solve_rate:.0%} (a falling rate can mean people failing them)")
    if p.actions.help_url:
        why.append("block pages say where to get help")
        return Assessment("on", why, settings, caught)
    why.append("no actions.help_url: people refused by mistake have nowhere to turn")
    return Assessment("partly", why, settings, caught)


MEASURES: tuple[Measure, ...] = (
    Measure(
        "R1",
        "Multi-layered technical and procedural controls, proportionate to the data's sensitivity",
        "Layered detectors and an action ladder; per-resource sensitivity",
        _r1,
    ),
    Measure(
        "R2",
        "A team or roles to implement controls, monitor for scraping and respond",
        "Dashboard users with roles; incidents with owners; audit log",
        _r2,
    ),
    Measure(
        "R3",
        "Limit how many other accounts' profiles one account may visit per hour or day",
        "Per-account budgets of distinct profiles, plus per-address, network and session limits",
        _r3,
        True,
    ),
    Measure(
        "R4",
        "Watch how quickly a new account starts looking for other users",
        "New-account velocity scored against the account's age",
        _r4,
        True,
    ),
    Measure(
        "R5",
        "Detect scrapers by patterns of bot activity",
        "Rate, breadth, enumeration, client and user-agent checks, address reputation, campaigns",
        _r5,
        True,
    ),
    Measure(
        "R6",
        "Detect bots (e.g. CAPTCHA) and block addresses once scraping is identified",
        "Proof-of-work and CAPTCHA challenges; escalating bans",
        _r6,
        True,
    ),
    Measure(
        "R7",
        "Legal follow-up: cease-and-desist, deletion demands and confirmation",
        "Incident evidence bundles, letter drafts, tracking of letters and confirmations",
        _r7,
    ),
    Measure(
        "R8",
        "Notify affected people and regulators where mass scraping is a reportable breach",
        "Exposed records and people per incident; notice drafts; deadline clocks",
        _r8,
    ),
    Measure(
        "R9",
        "Publicly accessible personal data is still protected",
        "Public pages are protected, not only logged-in areas",
        _r9,
        True,
    ),
    Measure(
        "R10",
        "Help users use the service in a privacy-protective way",
        "Explainable challenge and block pages; hooks for the site's privacy settings",
        _r10,
    ),
    Measure("R11", "Be able to demonstrate compliance", "This report and the tamper-evident audit log", _r11),
    Measure(
        "R12",
        "Review and update safeguards regularly",
        "Versioned, audited policy; what each detector caught",
        _r12,
    ),
    Measure(
        "R13",
        "AI helps scrapers evade detection and can help against them",
        "AI crawler recognition; explainable scoring",
        _r13,
    ),
    Measure(
        "R14",
        "Small and medium organisations have the same duty",
        "Runs on one machine with no other service; sane defaults",
        _r14,
    ),
    Measure(
        "R15",
        "Scraping allowed by contract still needs monitoring and enforcement of its terms",
        "Partner API keys with quotas; over-quota partners throttled and recorded",
        _r15,
        True,
    ),
    Measure(
        "R16",
        "Training AI on one's own platform's personal data must comply too",
        "Out of scope for the product",
        _r16,
    ),
    Measure(
        "R17",
        "Telling scrapers from people is hard; the site must stay user-friendly",
        "Observe mode before enforcing; no-JS-friendly challenges; solve rates",
        _r17,
    ),
)


def assess(measure: Measure, inputs: Inputs) -> Assessment:
    """``measure``'s assessment, at most ``partly`` when it acts on requests in observe mode."""
    result = measure.check(inputs)
    if measure.enforcing and inputs.policy.observe and result.status == "on":
        why = [*result.why, "observe mode: findings are recorded, nobody is refused"]
        return Assessment("partly", why, result.settings, result.caught)
    return result


def changed_settings(policy: Policy) -> list[str]:
    """Dotted names of the settings that differ from ``Policy()`` (names only: values may be secret)."""
    out: list[str] = []
    _diff(policy.model_dump(), Policy().model_dump(), "", out)
    return out


def _diff(mine: Any, default: Any, prefix: str, out: list[str]) -> None:
    if isinstance(mine, dict) and isinstance(default, dict):
        for key in sorted(set(mine) | set(default)):
            name = f"{prefix}.{key}" if prefix else str(key)
            if name in _SECRET_SETTINGS or not (
                isinstance(mine.get(key), dict) and isinstance(default.get(key), dict)
            ):
                if mine.get(key) != default.get(key):
                    out.append(name)
            else:
                _diff(mine.get(key), default.get(key), name, out)
    elif mine != default:
        out.append(prefix)
