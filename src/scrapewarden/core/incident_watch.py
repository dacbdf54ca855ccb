"""The live path's side of incidents: count in memory, hand over findings now and then.

A running door decides thousands of requests a second; writing an incident per blocked request
would make the state store the bottleneck and fill it with duplicates. So the Warden tells this
watch about every decision (a few dictionary operations), and asks it every few seconds which
actors crossed the policy's ``[incidents]`` threshold with something new since their last
report. Each actor is reported at most once per ``interval_seconds``.

What it remembers, bounded by the policy:

* per address, the last ``remember_records`` protected records it was *served* (requests the
  door let through, including everything in observe mode), so an incident names the exact
  records that left the site, not only the ones that were refused;
* per address under suspicion (any non-allow decision), who it seemed to be (network, accounts,
  fingerprint, user agents), which detectors fired and why, a few request samples.

Addresses and accounts are pseudonymised (as the event trail stores them) before they leave;
raw values live only in this process's memory. Pure: time comes in with each call.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .decision import Action, Decision
from .facts import RequestFacts
from .incidents import Actors, Detection
from .policy import IncidentPolicy, Policy
from .pseudonym import Pseudonymizer

SAMPLES_PER_REPORT = 5
FINGERPRINTS_PER_ADDRESS = 3
"""Refused requests per address whose client fingerprint is noted (one client rarely has more)."""
CHECK_EVERY = 5.0
"""Seconds between looks for due reports (at most; shorter when the interval is shorter)."""


@dataclass(slots=True)
class _Suspect:
    first: float
    last: float
    accounts: set[str] = field(default_factory=set)
    fingerprints: set[str] = field(default_factory=set)
    user_agents: set[str] = field(default_factory=set)
    campaign: str = ""
    blocked: bool = False
    worst: Action = Action.ALLOW
    """The strongest action taken against it (``[incidents] refusal`` compares with this)."""
    requests: int = 0
    score: float = 0.0
    detectors: dict[str, list[str]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    dirty: bool = True
    reported: float = float("-inf")


@dataclass(frozen=True, slots=True)
class Report:
    """What one actor did since its last report, raw (this process's memory only)."""

    ip: str
    first: float
    last: float
    blocked: bool
    accounts: tuple[str, ...]
    fingerprints: tuple[str, ...]
    user_agents: tuple[str, ...]
    campaign: str
    detectors: dict[str, list[str]]
    records: tuple[str, ...]
    requests: int
    samples: list[dict[str, Any]]
    score: float


class IncidentWatch:
    """Per-process memory of suspicious actors, reporting :class:`Detection` objects."""

    def __init__(self, policy: Policy, pseudonymizer: Pseudonymizer) -> None:
        self.policy: IncidentPolicy = policy.incidents
        self._v4 = policy.network.ipv4_network_prefix
        self._v6 = policy.network.ipv6_network_prefix
        self._p = pseudonymizer
        self._served: OrderedDict[str, deque[str]] = OrderedDict()
        self._suspects: OrderedDict[str, _Suspect] = OrderedDict()
        self.next_check = 0.0
        self._check_every = min(CHECK_EVERY, self.policy.interval_seconds)

    # -- the request path ---------------------------------------------------------------------

    def note(self, facts: RequestFacts, decision: Decision, fingerprint_of: Callable[[], str]) -> None:
        """One decision. Cheap: no I/O, bounded memory; pseudonyms are made when reporting, and
        the client fingerprint is asked for only the first few times per address."""
        if decision.record is not None and decision.effective is Action.ALLOW:
            self._serve(facts.ip, f"{decision.record[0]}:{decision.record[1]}")
        if decision.action is Action.ALLOW:
            return
        suspect = self._suspects.get(facts.ip)
        now = facts.now
        if suspect is None:
            suspect = self._suspects[facts.ip] = _Suspect(now, now)
            while len(self._suspects) > self.policy.remember_addresses:
                self._suspects.popitem(last=False)
        else:
            self._suspects.move_to_end(facts.ip)
        suspect.last = now
        suspect.requests += 1
        suspect.dirty = True
        suspect.score = max(suspect.score, decision.score)
        if decision.action is Action.BLOCK:
            suspect.blocked = True
        suspect.worst = max(suspect.worst, decision.action)
        if facts.account_id:
            suspect.accounts.add(facts.account_id)
        fingerprint = ""
        if suspect.requests <= FINGERPRINTS_PER_ADDRESS:
            fingerprint = fingerprint_of()
            if fingerprint:
                suspect.fingerprints.add(fingerprint)
        if facts.user_agent and len(suspect.user_agents) < 20:
            suspect.user_agents.add(facts.user_agent[:300])
        for ev in decision.evidence:
            if ev.weight <= 0:
                continue
            reasons = suspect.detectors.setdefault(ev.detector, [])
            if ev.reason not in reasons and len(reasons) < 5:
                reasons.append(ev.reason)
            if ev.actor == "fingerprint" and not suspect.campaign:
                # One fingerprint judged as one client across addresses: a coordinated campaign.
                fingerprint = fingerprint or fingerprint_of()
                if fingerprint:
                    suspect.campaign = f"fingerprint:{fingerprint}"
        if len(suspect.samples) < SAMPLES_PER_REPORT:
            suspect.samples.append(
                {
                    "ts": now,
                    "method": facts.method[:16],
                    "path": facts.path[:500],
                    "user_agent": facts.user_agent[:300],
                    "action": decision.action.label,
                    "enforced": decision.enforced,
                    "score": round(decision.score, 1),
                }
            )

    def _serve(self, ip: str, record: str) -> None:
        if self.policy.remember_records <= 0:
            return
        served = self._served.get(ip)
        if served is None:
            served = self._served[ip] = deque(maxlen=self.policy.remember_records)
            while len(self._served) > self.policy.remember_addresses:
                self._served.popitem(last=False)
        else:
            self._served.move_to_end(ip)
        served.append(record)

    # -- reporting ----------------------------------------------------------------------------

    def qualifies(self, ip: str) -> bool:
        suspect = self._suspects.get(ip)
        if suspect is None:
            return False
        p = self.policy
        if p.on_campaign and suspect.campaign:
            return True
        stopped = suspect.worst >= Action[p.refusal.upper()]
        return p.on_block and stopped and len(self._records(ip)) >= p.min_records

    def _records(self, ip: str) -> list[str]:
        served = self._served.get(ip)
        return list(dict.fromkeys(served)) if served else []

    def due(self, now: float, *, final: bool = False) -> list[Report]:
        """Findings to write now: actors over the threshold with news, each at most once per
        interval. Call when ``now >= next_check``. ``final`` (at shutdown): everything with
        news, whatever the interval. Each :class:`Report` is a snapshot that :meth:`detection`
        turns into a finding: that part (pseudonyms: HMACs) can run off the request path."""
        self.next_check = now + self._check_every
        if not self.policy.enabled:
            return []
        out = []
        for ip, suspect in self._suspects.items():
            if not suspect.dirty or (not final and now - suspect.reported < self.policy.interval_seconds):
                continue
            if not self.qualifies(ip):
                continue
            out.append(
                Report(
                    ip=ip,
                    first=suspect.first,
                    last=suspect.last,
                    blocked=suspect.blocked,
                    accounts=tuple(suspect.accounts),
                    fingerprints=tuple(suspect.fingerprints),
                    user_agents=tuple(suspect.user_agents),
                    campaign=suspect.campaign,
                    detectors=suspect.detectors,
                    records=tuple(self._records(ip)),
                    requests=suspect.requests,
                    samples=suspect.samples,
                    score=suspect.score,
                )
            )
            # What was reported is handed over, not copied: the next report holds what is new.
            suspect.reported = now
            suspect.dirty = False
            suspect.requests = 0
            suspect.detectors = {}
            suspect.samples = []
        return out

    def detection(self, report: Report) -> Detection:
        """The finding for ``report``, with addresses and accounts pseudonymised."""
        p = self._p
        pseudonym = p.ip(report.ip)
        return Detection(
            ts=report.last,
            first_ts=report.first,
            source="live",
            verdict="block" if report.blocked else "suspicious",
            actors=Actors(
                ips=[pseudonym],
                networks=[p.network(report.ip, self._v4, self._v6)],
                accounts=sorted(p.account(a) for a in report.accounts),
                fingerprints=sorted(report.fingerprints),
                user_agents=sorted(report.user_agents),
            ),
            campaign=report.campaign,
            detectors={k: list(v) for k, v in report.detectors.items()},
            records=list(report.records),
            requests=report.requests,
            samples=[{**sample, "ip": pseudonym} for sample in report.samples],
            score=report.score,
        )
