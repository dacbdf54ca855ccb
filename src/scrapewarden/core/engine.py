"""The engine: request facts in, a decision out.

Pure: no I/O, and the clock is ``facts.now``. Lists (bot user agents, IP ranges) arrive already
loaded, through the detector objects passed to the constructor. Order of business per request:

1. allow lists, bans and deny lists decide at once; an operator allow in force (see
   :mod:`.allows`) on any of the request's actors sets bans, deny lists, partners and crawler
   checks aside instead, and the request goes on to be counted and judged, for the record,
   then allowed;
2. partners (API keys with contracted quotas, statement R15) are held to their quotas only;
3. verified good bots pass;
4. everything else is scored: per-request detectors (client sanity, IP reputation, traps) and
   per-actor counters (rates, distinct-record budgets, new-account velocity, enumeration, assets)
   for each actor the request belongs to: its address, its network, its session, its account and
   its client fingerprint;
5. the strongest finding per detector is combined into a score, the score picks an action, and
   repeated blocks turn into ban requests for the door to persist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .allows import ALLOW_DETECTOR, AllowTable, allow_reason
from .bans import BanTable, ban_ttl
from .challenge_signals import evidence_for, parse_codes
from .clearance import bits_for_score, clearance_suffices, kind_for_score
from .counters import (
    ActorCounts,
    ActorState,
    ActorTable,
    DistinctCount,
    Observation,
    SharedNetworks,
    SlidingCount,
)
from .decision import Action, Decision, Evidence
from .detectors.assets import FLEET_ASSET_SHARE, fleet_evidence, no_assets_evidence
from .detectors.budgets import SENSITIVITY_FACTOR, breadth_evidence, rate_evidence
from .detectors.enumeration import MIN_PAIRS, enumeration_evidence
from .detectors.traps import trap_evidence
from .detectors.velocity import new_account_evidence
from .facts import RequestFacts
from .fingerprint import fingerprint, network_of
from .policy import ActorLimits, Partner, Policy
from .resources import RecordRef, ResourceMatcher
from .scoring import LIMIT_WARN_RATIO as WARN_RATIO
from .scoring import action_for, combine, limit_weight

SITE_ASSETS_MIN = 50
"""Asset requests the site must have served before "loads no assets" counts against anyone."""


class ClientChecker(Protocol):
    """Per-request client sanity (see ``detectors.client.ClientSanity``)."""

    def check(self, facts: RequestFacts) -> list[Evidence]: ...

    def claimed_bot(self, user_agent: str) -> str | None: ...


class AddressChecker(Protocol):
    """Per-request IP reputation (see ``detectors.reputation.IpReputation``)."""

    def check(self, ip: str) -> list[Evidence]: ...

    def allowed(self, ip: str) -> bool: ...

    def denied(self, ip: str) -> bool: ...

    def in_crawler_range(self, ip: str, bot: str) -> bool: ...

    def publishes_ranges(self, bot: str) -> bool: ...


class BotVerdicts(Protocol):
    """Cached answers to "is this address really that crawler?"; None while unknown."""

    def verdict(self, ip: str, claimed: str) -> bool | None: ...


@dataclass(slots=True)
class Pending:
    """A request half decided (see :meth:`Engine.begin`): its per-request findings so far, and
    what to count for which actors before :meth:`Engine.finish` can judge it."""

    facts: RequestFacts
    fingerprint: str
    record: RecordRef | None
    evidence: list[Evidence]
    actors: list[tuple[str, str]]
    """(kind, key) of each actor the request belongs to, most general first."""
    observation: Observation
    cleared: str
    """How the client earned its clearance ("pow", "nojs", "captcha"), or ""."""
    shown: tuple[str, ...]
    """What its browser showed while earning it (codes of :mod:`.challenge_signals`)."""
    network: str = ""
    """The address's network (counted as an actor or not)."""
    network_counted: bool = False
    """True when the network is one of ``actors``: several addresses are known to use it. A door
    sharing state tells the other instances so; while False, it asks them whether they have
    seen other addresses in it (and if so tells :meth:`Engine.network_shared`)."""
    allowed: str = ""
    """The operator allow (``kind:value``) in force for this request, or "": :meth:`Engine.finish`
    then judges the request as usual and allows it."""


class _PartnerUsage:
    __slots__ = ("records", "requests")

    def __init__(self) -> None:
        self.requests = SlidingCount(3600.0)
        self.records = DistinctCount(86400.0)


class Engine:
    """Decides on requests. One instance per process; not thread-safe (doors call it from one loop)."""

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        client: ClientChecker | None = None,
        reputation: AddressChecker | None = None,
        bot_verdicts: BotVerdicts | None = None,
        max_actors: int = 1_000_000,
    ) -> None:
        self.policy = policy = policy or Policy()
        self.client = client
        self.reputation = reputation
        self.bot_verdicts = bot_verdicts
        self.bans = BanTable()
        self.allows = AllowTable()
        """Operator allows in force (the door loads them from its store, as it does bans)."""
        self.resources = ResourceMatcher(policy.protected)
        limits = policy.limits
        self._tables = {
            kind: ActorTable(max_actors) for kind in ("ip", "network", "session", "account", "fingerprint")
        }
        self._limits: dict[str, ActorLimits] = {
            "ip": limits.per_ip,
            "network": limits.per_network,
            "session": limits.per_session,
            "account": limits.per_account,
            "fingerprint": limits.per_fingerprint,
        }
        self._traps = frozenset(policy.traps.paths)
        self._allow_accounts = frozenset(policy.allow.accounts)
        self._allow_paths = frozenset(policy.allow.paths)
        self._partners: dict[str, Partner] = {p.key_sha256.lower(): p for p in policy.identity.partners}
        self._partner_usage: dict[str, _PartnerUsage] = {}
        self._asset_prefixes = tuple(policy.client.asset_prefixes)
        self._asset_suffixes = tuple(policy.client.asset_suffixes)
        self._ban_scopes = (
            frozenset(policy.actions.bans.scopes) if policy.actions.bans.enabled else frozenset()
        )
        self._site_assets = 0
        self._enforced = policy.mode == "enforce"
        self._has_resources = bool(policy.protected)
        self._verify_bots = policy.allow.verified_bots
        self._networks = SharedNetworks(max_actors)
        self._v4 = policy.network.ipv4_network_prefix
        self._v6 = policy.network.ipv6_network_prefix
        self._under_attack = policy.challenge.under_attack
        # The no-JavaScript path's cost: a client cleared that way lives on half the budgets.
        self._nojs_limits = {kind: _halved(limits) for kind, limits in self._limits.items()}

    # -- the decision ---------------------------------------------------------------------------

    def decide(self, facts: RequestFacts) -> Decision:
        """Decide with this process's own counters: :meth:`begin`, :meth:`observe`, :meth:`finish`."""
        step = self.begin(facts)
        if isinstance(step, Decision):
            return step
        return self.finish(step, self.observe(step))

    def begin(self, facts: RequestFacts) -> Decision | Pending:
        """Everything that needs no per-actor counters: a Decision when the request is settled
        already (allow lists, bans, deny lists, partners, verified crawlers), else what must be
        counted for which actors, with the per-request findings so far."""
        policy = self.policy
        now = facts.now
        ip = facts.ip
        enforced = self._enforced
        record = self.resources.match(facts.method, facts.path, facts.query) if self._has_resources else None
        record_pair = (record.kind, record.record_id) if record else None
        reputation = self.reputation

        if (
            facts.path in self._allow_paths
            or (reputation is not None and reputation.allowed(ip))
            or (facts.account_id is not None and facts.account_id in self._allow_accounts)
        ):
            return Decision(
                Action.ALLOW, 0.0, [Evidence("allow", 0.0, "on the allow list")], enforced, record=record_pair
            )

        # The fingerprint is needed only to count anonymous clients or to match fingerprint
        # bans and allows.
        anonymous = not facts.account_id and not facts.session_id
        allows = self.allows
        fp = (
            fingerprint(facts)
            if anonymous
            or self.bans.holds("fingerprint")
            or (not allows.empty and allows.holds("fingerprint"))
            else ""
        )
        account, session = facts.account_id, facts.session_id
        allowed = (
            None
            if allows.empty
            else allows.match(now, ip=ip, account=account, session=session, fingerprint=fp)
        )
        ban = self.bans.match(now, ip=ip, account=account, session=session, fingerprint=fp)
        evidence: list[Evidence] = []
        denied = reputation is not None and reputation.denied(ip)
        if allowed is None:
            if ban is not None:
                banned = [Evidence("ban", 100.0, f"banned ({ban.partition(':')[0]})")]
                return Decision(Action.BLOCK, 100.0, banned, enforced, ban_key=ban, record=record_pair)
            if denied:
                deny = [Evidence("deny", 100.0, "address on the deny list", "ip")]
                return Decision(Action.BLOCK, 100.0, deny, enforced, record=record_pair)
            if facts.api_key and self._partners:
                digest = hashlib.sha256(facts.api_key.encode("utf-8", "replace")).hexdigest()
                partner = self._partners.get(digest)
                if partner is not None:
                    return self._partner_decision(partner, facts, record, enforced)
        else:
            # An operator allow sets the ban and the deny list aside; they stay in the evidence,
            # so the decision says what the allow overrode.
            if ban is not None:
                evidence.append(Evidence("ban", 100.0, f"banned ({ban.partition(':')[0]})"))
            if denied:
                evidence.append(Evidence("deny", 100.0, "address on the deny list", "ip"))

        client = self.client
        if client is not None:
            claimed = client.claimed_bot(facts.user_agent) if self._verify_bots and allowed is None else None
            if claimed is not None:
                verified = self._verify_bot(ip, claimed)
                if verified:
                    reason = f"verified crawler {claimed}"
                    return Decision(
                        Action.ALLOW,
                        0.0,
                        [Evidence("verified_bot", 0.0, reason)],
                        enforced,
                        record=record_pair,
                    )
                if verified is False:
                    evidence.append(
                        Evidence(
                            "client.spoofed_crawler",
                            70.0,
                            f"claims to be {claimed} from an address that is not",
                            "ip",
                        )
                    )
            evidence.extend(client.check(facts))
        if reputation is not None:
            evidence.extend(reputation.check(ip))
        if facts.malformed:
            evidence.append(
                Evidence("malformed", 10.0, "malformed request: " + "; ".join(facts.malformed[:3]))
            )

        cleared = facts.extra.get("clearance") if facts.extra else None
        shown: tuple[str, ...] = ()
        if cleared:
            # What the browser showed while it solved the challenge (webdriver, headless...).
            shown = parse_codes(facts.extra.get("clearance_signals", ""))
            if shown:
                evidence.extend(evidence_for(shown, policy.client))

        path = facts.path
        is_asset = path.startswith(self._asset_prefixes) or path.endswith(self._asset_suffixes)
        if is_asset:
            # Counts assets served site-wide: a site whose assets come from a CDN (or that has
            # none) never sees a browser fetch them, and then their absence means nothing.
            self._site_assets += 1
        page = not is_asset and (record is not None or "text/html" in (facts.header("accept") or ""))
        # Positional arguments: this runs on every request and keywords cost measurably.
        if record is None:
            observation = Observation(now, is_asset, page, path in self._traps)
        else:
            observation = Observation(
                now, is_asset, page, path in self._traps, record.digest, record.kind, record.record_id
            )
        actors, network, counted = self._actors(facts, fp)
        return Pending(
            facts,
            fp,
            record,
            evidence,
            actors,
            observation,
            cleared or "",
            shown,
            network,
            counted,
            allowed or "",
        )

    def observe(self, pending: Pending) -> list[ActorState]:
        """Count the request for each of its actors in this process's tables."""
        obs = pending.observation
        now = obs.now
        tables = self._tables
        counted = []
        for kind, key in pending.actors:
            state = tables[kind].get(key, now)
            state.observe(obs, kind)
            counted.append(state)
        return counted

    def finish(
        self, pending: Pending, counts: Sequence[ActorCounts], *, count_offences: bool = True
    ) -> Decision:
        """Judge the request from its per-request findings and its actors' counts (one per
        actor of ``pending.actors``, in order), and pick the action.

        A refusal's offences (``Decision.offences``) are counted in this process's tables, and
        bans due go into ``Decision.new_bans``; ``count_offences=False`` leaves that to the
        caller, whose counters are elsewhere (a shared store; see :meth:`offences_counted`)."""
        policy = self.policy
        facts = pending.facts
        now = facts.now
        record = pending.record
        record_pair = (record.kind, record.record_id) if record else None
        evidence = pending.evidence
        enforced = self._enforced
        cleared = pending.cleared
        shown = pending.shown
        self._judge_counts(pending, counts, halved=cleared == "nojs")

        score = combine(evidence)
        action = action_for(score, policy.thresholds)
        if pending.allowed:
            return _operator_allowed(pending, score, action, enforced, record_pair)
        exempt = False
        if cleared and not shown:
            exempt = clearance_suffices(cleared, score, policy)
        if action is Action.CHALLENGE and exempt:
            # A client that passed a challenge is not asked again until its clearance expires;
            # throttling and blocking still apply. A clearance earned by a browser that showed
            # signs of automation proves a browser, not a person: it exempts nothing. Nor does
            # an easy proof-of-work once the score has reached the CAPTCHA band.
            action = Action.ALLOW
            evidence.append(Evidence("cleared", 0.0, f"passed a challenge ({cleared})"))
        decision = Decision(action, score, evidence, enforced, record=record_pair)
        if action is Action.THROTTLE:
            decision.retry_after = policy.actions.throttle_retry_after
        elif action is Action.BLOCK:
            decision.tarpit_seconds = policy.actions.tarpit_seconds
            decision.decoy = policy.actions.decoy and record is not None
        if action >= Action.CHALLENGE and enforced and self._ban_scopes:
            scopes = self._ban_scopes
            decision.offences = [(kind, key) for kind, key in pending.actors if kind in scopes]
            if count_offences:
                decision.new_bans = self.count_offences(decision.offences, now)
        if action is Action.ALLOW and self._under_attack and not cleared and not pending.observation.asset:
            # Under attack, everyone without clearance is challenged. Not an offence: a person
            # reloading the challenge page must never collect a ban for it.
            decision.action = action = Action.CHALLENGE
            evidence.append(Evidence("under_attack", 0.0, "under-attack mode: no clearance yet"))
        if action is Action.CHALLENGE:
            decision.challenge_bits = bits_for_score(score, policy)
            decision.challenge_kind = kind_for_score(score, policy)
        return decision

    # -- pieces ------------------------------------------------------------------------------------

    def _verify_bot(self, ip: str, claimed: str) -> bool | None:
        """True: really that crawler. False: an impostor. None: cannot tell (yet)."""
        reputation = self.reputation
        if reputation is not None and reputation.in_crawler_range(ip, claimed):
            return True
        if self.bot_verdicts is not None:
            verdict = self.bot_verdicts.verdict(ip, claimed)
            if verdict is not None:
                return verdict
        # A crawler that publishes its ranges and is outside them is an impostor; for the others
        # (no ranges, no DNS verification) we simply don't know, and the bot user agent counts.
        if reputation is not None and reputation.publishes_ranges(claimed):
            return False
        return None

    def _actors(self, facts: RequestFacts, fp: str) -> tuple[list[tuple[str, str]], str, bool]:
        """The actors a request belongs to, most general first; the address's network, and
        whether it is one of them.

        Address always. Its network only once the network has a second address (see
        ``SharedNetworks``). Then the most specific identity the client shows: its account, else
        its session, else — for clients with neither — its fingerprint. (Thousands of people
        share a popular browser's fingerprint, so it is not counted for identified clients; for
        anonymous ones it is often the one thing a scraper rotating addresses cannot rotate.
        An account's budgets are tighter than a session's, so a logged-in session adds nothing.)
        """
        ip = facts.ip
        actors = [("ip", ip)]
        network = network_of(ip, self._v4, self._v6)
        counted = self._tables["network"].peek(network) is not None or self._networks.second_address(
            network, ip
        )
        if counted:
            actors.append(("network", network))
        if facts.account_id:
            actors.append(("account", facts.account_id))
        elif facts.session_id:
            actors.append(("session", facts.session_id))
        else:
            actors.append(("fingerprint", fp))
        return actors, network, counted

    def _judge_counts(self, pending: Pending, counts: Sequence[ActorCounts], *, halved: bool) -> None:
        """Findings from the actors' counts, the strongest per detector, into ``pending.evidence``."""
        facts = pending.facts
        obs = pending.observation
        now = obs.now
        record = pending.record
        policy = self.policy
        best: dict[str, Evidence] = {}
        all_limits = self._nojs_limits if halved else self._limits
        factor = SENSITIVITY_FACTOR.get(record.sensitivity, 1.0) if record is not None else 1.0

        # The cheap comparisons below guard every evidence function: most requests are nowhere
        # near a budget, and skipping the calls is most of the engine's speed.
        site_has_assets = self._site_assets >= SITE_ASSETS_MIN
        is_page = obs.page and not obs.asset
        ip_assets = 0
        for (kind, _key), state in zip(pending.actors, counts, strict=True):
            limits = all_limits[kind]
            per_minute = state.per_minute
            if per_minute >= WARN_RATIO * limits.requests_per_minute:
                _keep(best, rate_evidence(kind, per_minute, limits))
            if is_page and site_has_assets and state.assets * FLEET_ASSET_SHARE <= state.pages:
                if kind == "fingerprint":
                    # Anonymous clients sharing one software build across addresses, page after
                    # page and no assets: a fleet. Only a request for a person's record is held
                    # to it, from an address that has loaded no assets itself: a person with the
                    # same build who arrives on an ordinary page and loads its assets is never
                    # caught up in it.
                    if ip_assets == 0 and record is not None:
                        _keep(best, fleet_evidence(state, policy.client.fleet_no_assets))
                elif state.assets == 0 and state.pages >= 10:
                    _keep(best, no_assets_evidence(kind, state, policy.client.no_assets))
            if kind == "ip":
                ip_assets = state.assets
                if obs.trap or state.trapped_until > now:
                    _keep(best, trap_evidence(facts.path, self._traps, state, now, policy.traps.weight))
            if record is None:
                continue
            if (
                state.seen_hour * factor >= WARN_RATIO * limits.profiles_per_hour
                or state.seen_day * factor >= WARN_RATIO * limits.profiles_per_day
            ):
                _keep(best, breadth_evidence(kind, state, limits, record.sensitivity))
            if state.order_pairs >= MIN_PAIRS:
                _keep(best, enumeration_evidence(kind, state))
            if kind == "account" and facts.account_created is not None:
                _keep(
                    best, new_account_evidence(state, now - facts.account_created, policy.limits.new_account)
                )
        if best:
            pending.evidence.extend(best.values())

    def _partner_decision(
        self, partner: Partner, facts: RequestFacts, record: RecordRef | None, enforced: bool
    ) -> Decision:
        usage = self._partner_usage.get(partner.name)
        if usage is None:
            usage = self._partner_usage[partner.name] = _PartnerUsage()
        now = facts.now
        requests = usage.requests.add(now)
        records = usage.records.add(record.digest, now) if record else 0.0
        ratio = max(requests / partner.requests_per_hour, records / partner.records_per_day)
        evidence = [Evidence("partner", 0.0, f"partner {partner.name}")]
        if ratio > 1.0:
            evidence.append(
                Evidence(
                    "partner.quota",
                    limit_weight(ratio),
                    f"partner {partner.name} over its contracted quota "
                    f"({requests:.0f}/{partner.requests_per_hour} requests per hour, "
                    f"{records:.0f}/{partner.records_per_day} records per day)",
                )
            )
            # A partner over quota is throttled, never challenged: it is a known, contracted client.
            decision = Decision(
                Action.THROTTLE, evidence[-1].weight, evidence, enforced, record=_pair(record)
            )
            decision.retry_after = int(usage.requests.seconds_to_window_end(now)) + 1
            return decision
        return Decision(Action.ALLOW, 0.0, evidence, enforced, record=_pair(record))

    # -- offences and shared tallies (see docs/state.md) -----------------------------------------

    def count_offences(self, offences: Sequence[tuple[str, str]], now: float) -> list[tuple[str, str]]:
        """Count a refusal's offences (``Decision.offences``) in this process's tables; the
        bans now due (see :meth:`offences_counted`). A count that reaches the threshold starts
        again from zero, as the shared store's does."""
        bans = self.policy.actions.bans
        threshold = bans.blocks_before_ban
        counts = []
        for kind, key in offences:
            state = self._tables[kind].get(key, now)
            if state.blocks is None:
                state.blocks = SlidingCount(float(bans.window_seconds))
            count = state.blocks.add(now)
            if count >= threshold:
                state.blocks = None
            counts.append(count)
        return self.offences_counted(offences, counts, now)

    def offences_counted(
        self, offences: Sequence[tuple[str, str]], counts: Sequence[float], now: float
    ) -> list[tuple[str, str]]:
        """The bans due now that each actor of ``offences`` has the matching count of refusals
        within ``actions.bans.window_seconds`` (from this process or a shared store)."""
        bans = self.policy.actions.bans
        due: list[tuple[str, str]] = []
        for (kind, key), count in zip(offences, counts, strict=True):
            if count >= bans.blocks_before_ban:
                due.append((kind, key))
                # Take effect at once with the first-offence length; the door persists the ban
                # and replaces it with the escalated length for repeat offenders.
                self.bans.add(kind, key, now + ban_ttl(bans, 0))
        return due

    def network_shared(self, network: str) -> None:
        """Another instance has seen another address in ``network``: count it as an actor
        from the next request on (see :class:`~.counters.SharedNetworks`)."""
        self._networks.mark_shared(network)

    @property
    def site_assets_known(self) -> bool:
        """True once enough assets were served site-wide for "loads no assets" to count."""
        return self._site_assets >= SITE_ASSETS_MIN

    def note_site_assets(self, total: int) -> None:
        """The site-wide asset tally as a shared store knows it (every instance's assets,
        this one's included): the engine holds the larger of it and its own."""
        if total > self._site_assets:
            self._site_assets = total

    def adopt_state(self, previous: Engine) -> None:
        """Continue from ``previous`` (a policy reload): keep its bans, counters and site-wide
        tallies so that a reload never hands every scraper a fresh budget. Limits, weights and
        detectors are this engine's own (the new policy's)."""
        self.bans = previous.bans
        self.allows = previous.allows
        self._tables = previous._tables
        self._networks = previous._networks
        self._site_assets = previous._site_assets
        self._partner_usage = previous._partner_usage

    # -- introspection -------------------------------------------------------------------------------

    def actor(self, kind: str, key: str) -> ActorState | None:
        """Counters of one actor, for reports and tests."""
        return self._tables[kind].peek(key)

    def actor_counts(self) -> dict[str, int]:
        return {kind: len(table) for kind, table in self._tables.items()}


def _operator_allowed(
    pending: Pending, score: float, verdict: Action, enforced: bool, record: tuple[str, str] | None
) -> Decision:
    """An operator allow's decision: ALLOW, first the allow's reason (naming what it overrode),
    then every finding behind the verdict it set aside. No offences are counted (the allowed
    actor must not collect a ban to serve when the allow ends), no challenge is asked, not even
    under attack: the operator has decided about this actor."""
    kind = pending.allowed.partition(":")[0]
    overridden = verdict.label if verdict is not Action.ALLOW else ""
    evidence = [Evidence(ALLOW_DETECTOR, 0.0, allow_reason(kind, overridden), kind), *pending.evidence]
    return Decision(
        Action.ALLOW, score, evidence, enforced, record=record, allow_key=pending.allowed, overridden=verdict
    )


def _keep(best: dict[str, Evidence], item: Evidence | None) -> None:
    """Keep the strongest finding per detector: the same behaviour seen through several actors
    (address, network, fingerprint) is one finding, not several."""
    if item is not None:
        current = best.get(item.detector)
        if current is None or item.weight > current.weight:
            best[item.detector] = item


def _halved(limits: ActorLimits) -> ActorLimits:
    return ActorLimits(
        requests_per_minute=max(1, limits.requests_per_minute // 2),
        profiles_per_hour=max(1, limits.profiles_per_hour // 2),
        profiles_per_day=max(1, limits.profiles_per_day // 2),
    )


def _pair(record: RecordRef | None) -> tuple[str, str] | None:
    return (record.kind, record.record_id) if record else None


__all__ = ["SENSITIVITY_FACTOR", "Engine", "Pending"]
