"""The Warden: one engine plus its state store, a clock and the event trail.

Every door (ASGI/WSGI middleware, proxy, forward-auth service, log analyzer) holds one Warden and
calls :meth:`Warden.decide_http` (raw HTTP) or :meth:`Warden.decide` (ready facts) per request.
The Warden is the only place where the pure engine meets time and storage:

- it reads the clock and stamps the facts;
- it loads bot and address lists for the engine's detectors;
- it writes every non-allow decision to the store as an event, with addresses and account ids
  pseudonymised when the policy asks (the default);
- it turns the engine's ban requests into stored bans with an escalating expiry, and reloads bans
  and operator allows from the store every few seconds so those added by the CLI, the dashboard
  or another process take effect;
- it records a request an operator allow let through when it would otherwise have been refused
  (the allowed actor stays monitored, and the timeline shows why it passed);
- it counts every decision, and reports its store's health, in the Prometheus metrics
  (:mod:`.metrics`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .challenge.service import VERIFY_PATH, ChallengeService, Outcome
from .core.allows import AllowTable
from .core.audit import SYSTEM, AuditRecord
from .core.bans import ban_ttl
from .core.counters import ActorCounts
from .core.decision import Action, Decision
from .core.engine import Engine, Pending
from .core.facts import RequestFacts
from .core.fingerprint import fingerprint
from .core.http_facts import facts_from_http
from .core.incident_watch import IncidentWatch, Report
from .core.incidents import Detection
from .core.policy import Policy
from .core.pseudonym import Pseudonymizer
from .core.sampling import sample_point
from .core.sampling import tag as sampling_tag
from .loop_thread import LoopThread
from .metrics import record_challenge, record_decision, unwatch_state, watch_state
from .state.base import Allow, Ban, BanKind, Event, StateStore
from .state.shared_keys import PSEUDONYM_KEY, StoredKey, shared_key, stored_key
from .state.summary import CHALLENGE_FAILED, CHALLENGE_PASSED
from .state.url import open_state

if TYPE_CHECKING:
    from .core.engine import Pending
    from .state.redis.counters import RedisCounters
    from .state.redis.tallies import SharedTallies

log = logging.getLogger("scrapewarden")

SAMPLE_MEMO_SIZE = 65_536
"""Addresses whose sampling answer is kept, so an allowed request costs no hash most times."""
BAN_REFRESH_SECONDS = 2.0
BAN_REFRESH_MIN_WALL = 0.2
"""Seconds by the Warden's clock between two reads of the shared bans at least, whatever the
requests' own times say: a replay (``watch --from-start``) or a benchmark packs hours of
request time into seconds, and each read is a round trip to the store on the request path."""
FILING_MIN_WALL = 1.0
"""Seconds by the Warden's clock between two incident filing rounds at least (each round starts
a thread that reads and writes the store)."""
BRIDGE_MARGIN = 0.01
"""Seconds a synchronous caller waits beyond the shared counters' own deadline: the hop to the
loop thread and back, which a busy process (many threads, one interpreter lock) may delay."""
RETENTION_CHECK_SECONDS = 3600.0


def build_engine(policy: Policy) -> Engine:
    """An engine with every detector on, fed with the lists shipped in the package."""
    from .lists import client_sanity, ip_reputation, load_ip_ranges

    verdicts = None
    if policy.allow.verified_bots and policy.allow.verify_dns:
        from .bot_verify import BotVerifier, SystemResolver

        verdicts = BotVerifier(SystemResolver(), load_ip_ranges())
    return Engine(
        policy, client=client_sanity(policy), reputation=ip_reputation(policy), bot_verdicts=verdicts
    )


def resolve_policy(policy: Policy | str | Path | None, *, under_attack: bool = False) -> Policy:
    """A Policy from an object, a file path, ``SCRAPEWARDEN_POLICY``, or the defaults (+ env).

    ``under_attack`` (the doors' ``--under-attack`` switch) returns a copy with
    ``challenge.under_attack`` on, whatever the file says.
    """
    from .policy_file import load_policy, policy_from_env

    if isinstance(policy, Policy):
        resolved = policy
    else:
        if policy is None:
            policy = os.environ.get("SCRAPEWARDEN_POLICY") or None
        resolved = policy_from_env() if policy is None else load_policy(policy)
    return under_attack_policy(resolved) if under_attack else resolved


def under_attack_policy(policy: Policy) -> Policy:
    """A copy of ``policy`` that challenges every visitor without clearance (assets excepted)."""
    if policy.challenge.under_attack:
        return policy
    challenge = policy.challenge.model_copy(update={"under_attack": True})
    return policy.model_copy(update={"challenge": challenge})


class Warden:
    def __init__(
        self,
        policy: Policy | str | Path | None = None,
        *,
        state: str | StateStore | None = None,
        engine: Engine | None = None,
        clock: Callable[[], float] = time.time,
        under_attack: bool = False,
        counters: RedisCounters | None = None,
    ) -> None:
        """``under_attack`` switches the policy's ``challenge.under_attack`` on (a copy; the
        file is not changed). ``counters``: per-actor counters shared with other instances
        (used by :meth:`decide_async`; see :mod:`scrapewarden.state.redis.counters`)."""
        engine_policy = getattr(engine, "policy", None)
        if under_attack and isinstance(engine_policy, Policy) and not engine_policy.challenge.under_attack:
            # The engine is what challenges; one built for another policy would silently not.
            raise ValueError("under_attack needs an engine built for the under-attack policy")
        self.policy: Policy = resolve_policy(policy, under_attack=under_attack)
        self.engine = engine or build_engine(self.policy)
        # --state (or an explicit URL) > SCRAPEWARDEN_STATE > the policy's state key > memory://
        self.store: StateStore = (
            open_state(state, default=self.policy.state) if state is None or isinstance(state, str) else state
        )
        self.clock = clock
        self._pseudonym_key = self._stored_key()
        self.pseudonymizer = Pseudonymizer.from_policy(
            self.policy.privacy, fallback_key=self._pseudonym_key.value if self._pseudonym_key else None
        )
        self.challenges = ChallengeService(self.policy, self.store, clock)
        self.challenges.on_outcome = self._record_outcome
        """Challenge pages, answers and clearance cookies, signed with a key shared via the store."""
        self._own_counters = counters is None
        self.counters = counters if counters is not None else self._shared_counters()
        self.tallies: SharedTallies | None = None
        """Offences, shared networks and the site-wide asset tally, beside the shared counters."""
        if self.counters is not None:
            from .state.redis.tallies import SharedTallies

            self.tallies = SharedTallies.beside(self.counters)
        self._lock = threading.Lock()
        self._loop_thread = LoopThread()
        """Runs the shared counters' calls for synchronous doors (:meth:`decide_shared_sync`)."""
        self._loop_pid = 0
        """The process whose loop thread the counters' connections belong to (0: none yet)."""
        self._bridge_lock = threading.Lock()
        self._next_ban_refresh = 0.0
        self._next_ban_refresh_wall = 0.0
        self._next_retention = 0.0
        self.decisions = 0
        self.actions = {action: 0 for action in Action}
        watch_state(self)  # its store's and counters' health, in the metrics
        self.incident_watch = (
            IncidentWatch(self.policy, self.pseudonymizer) if self.policy.incidents.enabled else None
        )
        """Counts suspicious actors in memory; findings over ``[incidents]`` thresholds are filed
        as incidents from a background thread, at most once per actor per interval."""
        self._incident_lock = threading.Lock()
        self._sample_memo: dict[str, float] = {}
        """Per address, its point in [0, 1): below the share, its allowed requests are recorded."""
        self._unfiled: list[Report | Detection] = []
        self._filing: threading.Thread | None = None
        self._next_filing_wall = 0.0

    def _shared_counters(self) -> RedisCounters | None:
        """Per-actor counters on the same Redis as the state store, when it is one: every
        instance then holds a scraper to one budget. Actors are stored under keyed pseudonyms."""
        return shared_counters(self.store, self.pseudonymizer.generic)

    def _stored_key(self) -> StoredKey | None:
        """The store's own pseudonymisation key, made on first use.

        Without a key in the policy, every process sharing a store then uses the same key, so
        pseudonyms stay comparable across restarts and instances while the key never appears in
        the events it protects. One made while the store could not answer is provisional until
        :meth:`_converge_keys` finds the shared one.
        """
        if not self.policy.privacy.pseudonymize or self.policy.privacy.key:
            return None
        return stored_key(self.store, PSEUDONYM_KEY, "pseudonymisation key")

    @property
    def keys_provisional(self) -> bool:
        """True while this process uses a pseudonymisation key of its own, made while the store
        could not answer: counting on shared counters under it would share nothing."""
        return self._pseudonym_key is not None and self._pseudonym_key.provisional

    def _converge_keys(self) -> None:
        """Keys made while the store could not answer are this process's own; once it can, the
        shared ones replace them (see docs/state.md). Called with the ban refresh."""
        mine = self._pseudonym_key
        if mine is not None and mine.provisional:
            shared = shared_key(self.store, PSEUDONYM_KEY, mine.value)
            if shared is not None:
                if shared != mine.value:
                    self.pseudonymizer = Pseudonymizer.from_policy(self.policy.privacy, fallback_key=shared)
                    self._sample_memo = {}
                    if self._own_counters:
                        for user in (self.counters, self.tallies):
                            if user is not None:
                                user.name = self.pseudonymizer.generic
                    log.warning(
                        "scrapewarden: pseudonymisation key now the one shared through the state store"
                    )
                self._pseudonym_key = StoredKey(shared)
        self.challenges.converge_key()

    # -- deciding --------------------------------------------------------------------------------

    def facts_http(
        self,
        *,
        peer: str,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[bytes, bytes]],
        account_id: str | None = None,
        account_created: float | None = None,
        scheme: str = "http",
    ) -> RequestFacts:
        """The facts of one raw HTTP request, stamped now, with its clearance read. Never raises
        on bad input."""
        facts = facts_from_http(
            self.policy,
            now=self.clock(),
            peer=peer,
            method=method,
            path=path,
            query=query,
            headers=headers,
            account_id=account_id,
            account_created=account_created,
            scheme=scheme,
        )
        # A valid clearance cookie (bound to this network and user agent) tells the engine this
        # client passed a challenge; forged, expired or borrowed cookies are simply ignored.
        self.read_clearance(facts)
        return facts

    def decide_http(
        self,
        *,
        peer: str,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[bytes, bytes]],
        account_id: str | None = None,
        account_created: float | None = None,
        scheme: str = "http",
    ) -> Decision:
        """Decide on one raw HTTP request. Never raises on bad input."""
        facts = self.facts_http(
            peer=peer,
            method=method,
            path=path,
            query=query,
            headers=headers,
            account_id=account_id,
            account_created=account_created,
            scheme=scheme,
        )
        return self.decide(facts)

    async def decide_http_async(self, **request: Any) -> Decision:
        """:meth:`decide_http` for async doors: with shared counters (:attr:`counters`) the
        request is counted on Redis and judged on those counts; without them, or when Redis does
        not answer in time, on this process's counters."""
        return await self.decide_async(self.facts_http(**request))

    async def decide_async(self, facts: RequestFacts) -> Decision:
        counters = self.counters
        if counters is None or self.keys_provisional:
            return self.decide(facts)
        started = time.perf_counter()
        step, assets_short = self._begin(facts)
        if isinstance(step, Decision):
            return self._after(facts, step, started)
        counted: Sequence[ActorCounts] | None = await counters.observe(step.actors, step.observation)
        return self._finish(facts, step, counted, assets_short, started)

    def decide_shared_sync(self, facts: RequestFacts) -> Decision:
        """:meth:`decide_async` for synchronous doors (WSGI worker threads, ``watch``).

        Only the Redis call leaves the calling thread: it runs on this Warden's one event-loop
        thread (:class:`~.loop_thread.LoopThread`, started on first use), where every thread's
        requests join one pipelined round trip; the engine's steps stay on the calling thread
        under ``_lock``, exactly as in :meth:`decide`, because the engine is not thread-safe.
        The caller waits at most the counters' deadline plus :data:`BRIDGE_MARGIN` (the hop
        between threads), then counts locally; a late Redis answer is dropped, so no request
        is judged twice. Without shared counters this is :meth:`decide`. The shared tallies'
        asks (offences, networks, assets) are handed to the same loop thread, unwaited.
        """
        counters = self.counters
        if counters is None or self.keys_provisional:
            return self.decide(facts)
        started = time.perf_counter()
        step, assets_short = self._begin(facts)
        if isinstance(step, Decision):
            return self._after(facts, step, started)
        counters = self._bridged_counters(counters)
        future = self._loop_thread.submit(counters.observe(step.actors, step.observation))
        counted: Sequence[ActorCounts] | None
        try:
            counted = future.result(counters.timeout + BRIDGE_MARGIN)
        except Exception:  # past the deadline (the loop thread starved, say): count locally
            future.cancel()
            counted = None
        return self._finish(facts, step, counted, assets_short, started)

    def _bridged_counters(self, counters: RedisCounters) -> RedisCounters:
        """``counters``, or fresh ones when this is a process forked after the loop thread
        started: connections made on the parent's loop (their sockets shared with the parent)
        must not be used from the child's. The tallies likewise, told which loop is theirs."""
        pid = os.getpid()
        if self._loop_pid == pid:
            return counters
        with self._bridge_lock:  # one thread of a fresh process sets up; the others wait
            if self._loop_pid != pid:
                if self._loop_pid != 0:
                    self.counters = self._shared_counters() or counters
                    if self.tallies is not None and self.counters is not counters:
                        from .state.redis.tallies import SharedTallies

                        self.tallies = SharedTallies.beside(self.counters)
                self._loop_thread.ensure()
                if self.tallies is not None:
                    self.tallies.loop = self._loop_thread.submit(_running_loop()).result()
                self._loop_pid = pid
            return self.counters or counters

    def _begin(self, facts: RequestFacts) -> tuple[Decision | Pending, bool]:
        """The engine's first step, and whether the site-wide asset tally is still short: asked
        before begin() counts this request's asset, which must then reach the shared tally even
        if it is the one that completes the local count."""
        with self._lock:
            self._refresh_bans_if_due(facts.now)
            short = not self.engine.site_assets_known
            return self.engine.begin(facts), short

    def _finish(
        self,
        facts: RequestFacts,
        step: Pending,
        counted: Sequence[ActorCounts] | None,
        assets_short: bool,
        started: float,
    ) -> Decision:
        tallies = self.tallies
        # Offences are counted where the counts came from: Redis, or (it is away) this process.
        shared = counted is not None and tallies is not None
        with self._lock:
            if counted is None:  # Redis is away: decide on this process's own counters
                counted = self.engine.observe(step)
            finished = self.engine.finish(step, counted, count_offences=not shared)
            decision = self._imposing_bans(finished, facts.now)
        if tallies is not None:
            # Outside the lock: the answers come back through callbacks that take it. (From
            # several threads at once, the tallies' bookkeeping may at worst ask twice.)
            if shared and decision.offences:
                self._count_offences_shared(tallies, decision, facts.now)
            self._share_tallies(tallies, step, assets_short)
        return self._after(facts, decision, started)

    def _count_offences_shared(self, tallies: SharedTallies, decision: Decision, now: float) -> None:
        """Count a refusal's offences on Redis, in the background (the refusal does not wait),
        so that every instance's refusals add up to one ban threshold; in this process when
        Redis does not answer in time. A ban falls due as the count comes back and takes
        effect from the next request, as it does in one process."""
        bans = self.engine.policy.actions.bans

        def counted(counts: list[float] | None) -> None:
            # On the tallies' loop, or at once on the caller's thread if the ask was not made.
            with self._lock:
                if counts is None:
                    due = self.engine.count_offences(decision.offences, now)
                else:
                    due = self.engine.offences_counted(decision.offences, counts, now)
                for kind, value in due:
                    self._impose_ban(kind, value, now, decision)

        tallies.offences(decision.offences, now, bans.window_seconds, bans.blocks_before_ban, counted)

    def _share_tallies(self, tallies: SharedTallies, step: Pending, assets_short: bool) -> None:
        """In the background: tell the other instances that this address's network is shared
        (or ask whether they have seen other addresses in it), and add to (or read) the
        site-wide asset tally until it is enough."""
        now = step.facts.now
        tallies.network_seen(
            step.network, step.facts.ip, now, self._network_shared, counted=step.network_counted
        )
        if assets_short:
            tallies.site_assets(step.observation.asset, now, self._site_assets)

    def _network_shared(self, network: str) -> None:
        with self._lock:
            self.engine.network_shared(network)

    def _site_assets(self, total: int) -> None:
        with self._lock:
            self.engine.note_site_assets(total)

    def read_clearance(self, facts: RequestFacts) -> None:
        """Note in ``facts`` how the client earned its clearance cookie, and what its browser
        showed meanwhile; forged, expired or borrowed cookies are simply ignored. Every door
        that builds facts itself calls this before :meth:`decide`."""
        cleared = self.challenges.clearance_for(facts)
        if cleared is not None:
            facts.extra["clearance"] = cleared.how
            if cleared.signals:
                facts.extra["clearance_signals"] = ",".join(cleared.signals)

    def decide(self, facts: RequestFacts) -> Decision:
        started = time.perf_counter()
        now = facts.now
        with self._lock:
            self._refresh_bans_if_due(now)
            decision = self._imposing_bans(self.engine.decide(facts), now)
        return self._after(facts, decision, started)

    def _refresh_bans_if_due(self, now: float) -> None:
        if now >= self._next_ban_refresh and self.clock() >= self._next_ban_refresh_wall:
            self._refresh_bans(now)

    def _imposing_bans(self, decision: Decision, now: float) -> Decision:
        """Persist the bans the engine asked for (with escalation); the decision, unchanged."""
        for kind, value in decision.new_bans:
            self._impose_ban(kind, value, now, decision)
        return decision

    def _after(self, facts: RequestFacts, decision: Decision, started: float) -> Decision:
        """Tallies, the event trail, the owed challenge and the metrics (``started``: the
        decision's ``perf_counter()``), whichever way the decision was made."""
        self.decisions += 1
        self.actions[decision.action] += 1
        if self.incident_watch is not None:
            self._watch_incidents(facts, decision)
        overrode_refusal = decision.overridden is not None and decision.overridden is not Action.ALLOW
        if decision.action is Action.ALLOW and not overrode_refusal:
            if self.policy.privacy.record_allowed_share > 0 and self._sampled(facts.ip) is not None:
                self._record(facts, decision)  # a sampled address: its allowed requests too
        else:
            self._record(facts, decision)
            if decision.action is Action.CHALLENGE and decision.enforced:
                # Whatever the door answers (page or JSON), a direct GET of the challenge page
                # must not then hand this client an easier challenge than the one it was owed.
                self.challenges.note_demand(facts.ip, facts.user_agent, decision)
        record_decision(decision, time.perf_counter() - started)
        return decision

    # -- incidents ---------------------------------------------------------------------------------

    def _watch_incidents(self, facts: RequestFacts, decision: Decision) -> None:
        watch = self.incident_watch
        if watch is None or (decision.action is Action.ALLOW and decision.record is None):
            return
        with self._incident_lock:
            watch.note(facts, decision, lambda: fingerprint(facts))
            if facts.now < watch.next_check or self.clock() < self._next_filing_wall:
                return
            # At most one filing round per FILING_MIN_WALL of the Warden's clock, whatever the
            # requests' own times say (a replay packs hours of request time into seconds).
            self._next_filing_wall = self.clock() + FILING_MIN_WALL
            detections = watch.due(facts.now)
            if not detections and not self._unfiled:
                return
            if self._filing is not None and self._filing.is_alive():
                self._unfiled = (self._unfiled + detections)[-1000:]  # next time
                return
            batch, self._unfiled = self._unfiled + detections, []
            # The store is written off the request path: this request does not wait for it.
            self._filing = threading.Thread(
                target=self._file_incidents, args=(batch,), name="scrapewarden-incidents", daemon=True
            )
            self._filing.start()

    def _file_incidents(self, found: list[Report | Detection]) -> None:
        from .incidents.book import IncidentBook

        watch = self.incident_watch
        assert watch is not None
        detections = [watch.detection(f) if isinstance(f, Report) else f for f in found]
        book = IncidentBook(self.store, clock=self.clock, team=self.policy.incidents.team)
        try:
            book.record_many(detections)
        except Exception:  # Redis away, disk full: keep them for the next round (absorbing twice
            # what was filed before the failure only repeats counts, never loses a record)
            log.warning("could not file %d incident findings; retrying later", len(detections))
            with self._incident_lock:
                self._unfiled = (detections + self._unfiled)[-1000:]

    # -- bans --------------------------------------------------------------------------------------

    def _refresh_bans(self, now: float) -> None:
        self._next_ban_refresh = now + BAN_REFRESH_SECONDS
        self._next_ban_refresh_wall = self.clock() + BAN_REFRESH_MIN_WALL
        self._converge_keys()
        try:
            bans = self.store.list_bans(now)
        except Exception:  # a broken store must not take requests down; keep the bans we have
            log.exception("could not reload bans; keeping the previous list")
            return
        table = self.engine.bans
        table.clear()
        for ban in bans:
            try:
                table.add(ban.kind, ban.value, ban.expires)
            except (ValueError, KeyError):
                log.warning("ignoring unusable ban %s", ban.key)
        self._refresh_allows(now)
        if now >= self._next_retention:
            self._next_retention = now + RETENTION_CHECK_SECONDS
            try:
                self.store.prune_events(now - self.policy.privacy.event_retention_days * 86400.0)
                self.store.prune_bans(now)
                self.store.prune_allows(now)
            except Exception:
                log.exception("retention pass failed")

    def _refresh_allows(self, now: float) -> None:
        """Operator allows from the store, with the bans (see :meth:`_refresh_bans`). An engine
        without an allow table (a test's scripted one) has nothing to load them into."""
        table = getattr(self.engine, "allows", None)
        if table is None:
            return
        try:
            allows = self.store.list_allows(now)
        except Exception:  # as for bans: keep the allows we have
            log.exception("could not reload operator allows; keeping the previous list")
            return
        table.clear()
        for allow in allows:
            try:
                table.add(allow.kind, allow.value, allow.expires)
            except (ValueError, KeyError):
                log.warning("ignoring unusable allow of kind %s", allow.kind)

    def _impose_ban(self, kind: str, value: str, now: float, decision: Decision) -> None:
        try:
            offences = self.store.prior_offences(cast(BanKind, kind), value)
        except Exception:
            offences = 0
        ttl = ban_ttl(self.policy.actions.bans, offences)
        reason = "automatic: " + "; ".join(decision.reasons()[:3])
        self.engine.bans.add(kind, value, now + ttl)
        try:
            self.store.add_ban(
                Ban(
                    kind=cast(BanKind, kind),
                    value=value,
                    created=now,
                    expires=now + ttl,
                    reason=reason[:500],
                    offences=offences + 1,
                    source="auto",
                )
            )
            details = {"expires": now + ttl, "reason": reason[:500], "offences": offences + 1}
            self.store.append_audit(AuditRecord(now, SYSTEM, "ban.add", f"{kind}:{value}", details))
        except Exception:
            log.exception("could not store ban %s:%s", kind, "<redacted>")

    def ban(
        self, kind: BanKind, value: str, *, ttl: float | None, reason: str = "", by: str = "operator"
    ) -> Ban:
        """Impose a ban now (operator action, audited as ``by``); also visible to other processes
        via the store."""
        now = self.clock()
        ban = Ban(
            kind=kind,
            value=value,
            created=now,
            expires=now + ttl if ttl else None,
            reason=reason,
            source="operator",
        )
        stored = self.store.add_ban(ban)
        details = {"expires": ban.expires, "reason": reason, "offences": stored.offences}
        self.store.append_audit(AuditRecord(now, by, "ban.add", stored.key, details))
        with self._lock:
            self.engine.bans.add(kind, value, ban.expires)
        return stored

    # -- operator allows -----------------------------------------------------------------------------

    def allow(
        self, kind: BanKind, value: str, *, ttl: float | None, reason: str = "", by: str = "operator"
    ) -> Allow:
        """Allow an actor now (operator action, audited as ``by``): its requests are allowed
        whatever bans and detectors say, and still counted, until ``ttl`` seconds from now
        (None or 0: until lifted). Other processes pick it up with their ban reload."""
        now = self.clock()
        allow = Allow(
            kind=kind, value=value, created=now, expires=now + ttl if ttl else None, reason=reason, by=by
        )
        stored = self.store.add_allow(allow)
        details = {"expires": stored.expires, "reason": reason}
        self.store.append_audit(AuditRecord(now, by, "allow.add", stored.key, details))
        with self._lock:
            self._allows_table().add(kind, value, stored.expires)
        return stored

    def lift_allow(self, kind: BanKind, value: str, *, by: str = "operator") -> bool:
        """Lift an operator allow now (audited as ``by``); False if there was none."""
        removed = self.store.remove_allow(kind, value)
        if removed:
            self.store.append_audit(AuditRecord(self.clock(), by, "allow.remove", f"{kind}:{value}"))
        with self._lock:
            self._allows_table().remove(kind, value)
        return removed

    def _allows_table(self) -> AllowTable:
        table: AllowTable | None = getattr(self.engine, "allows", None)
        return table if table is not None else AllowTable()  # a scripted engine: nothing to hold

    # -- events ------------------------------------------------------------------------------------

    def _sampled(self, ip: str) -> str | None:
        """The sampling tag if every request of ``ip`` is recorded (see core/sampling.py)."""
        share = self.policy.privacy.record_allowed_share
        if share <= 0:
            return None
        point = self._sample_memo.get(ip)
        if point is None:
            if len(self._sample_memo) >= SAMPLE_MEMO_SIZE:
                self._sample_memo.clear()  # a fresh start costs one hash per address
            point = self._sample_memo[ip] = sample_point(self.pseudonymizer, self.pseudonymizer.ip(ip))
        return sampling_tag(share) if point < share else None

    def _record(self, facts: RequestFacts, decision: Decision) -> None:
        p = self.pseudonymizer
        reasons = decision.reasons()
        sampled = self._sampled(facts.ip)
        if sampled is not None:
            reasons.append(sampled)
        try:
            self.store.record_event(
                Event(
                    ts=facts.now,
                    action=decision.action.label,
                    score=decision.score,
                    enforced=decision.enforced,
                    ip=p.ip(facts.ip),
                    method=facts.method[:16],
                    path=facts.path[:500],
                    user_agent=facts.user_agent[:300],
                    account=p.account(facts.account_id) if facts.account_id else None,
                    session=p.generic("session", facts.session_id) if facts.session_id else None,
                    fingerprint=fingerprint(facts),
                    reasons=reasons,
                    record=f"{decision.record[0]}:{decision.record[1]}" if decision.record else None,
                )
            )
        except Exception:
            log.exception("could not record an event")

    def _record_outcome(self, outcome: Outcome) -> None:
        """A checked challenge answer joins the event trail: the solve rate is passed answers
        over challenge decisions (see :mod:`scrapewarden.state.summary`)."""
        record_challenge(outcome.passed, outcome.how)
        self.store.record_event(
            Event(
                ts=outcome.ts,
                action=CHALLENGE_PASSED if outcome.passed else CHALLENGE_FAILED,
                score=0.0,
                enforced=True,
                ip=self.pseudonymizer.ip(outcome.ip),
                method="POST",
                path=VERIFY_PATH,
                user_agent=outcome.user_agent[:300],
                reasons=[outcome.how, *outcome.detail],
            )
        )

    def settle_incidents(self, timeout: float = 10.0) -> None:
        """Wait until findings already handed to the background filer are in the store."""
        filing = self._filing
        if filing is not None:
            filing.join(timeout)

    def close(self, *, keep_store: bool = False) -> None:
        """Stop this Warden; ``keep_store`` leaves its store open for the Warden replacing it
        (a policy reload that shares the store)."""
        unwatch_state(self)
        self.settle_incidents(5.0)
        if self.incident_watch is not None:
            with self._incident_lock:
                final, self._unfiled = self._unfiled + self.incident_watch.due(self.clock(), final=True), []
            if final:
                self._file_incidents(final)  # what was still being counted is not lost on shutdown
        counters, tallies = self.counters, self.tallies
        bridged = counters is not None and self._loop_pid
        self._loop_thread.close(_close_shared(counters, tallies) if bridged else None)
        self.challenges.close()
        if tallies is not None and not bridged:
            tallies.close()
        self.store.flush()
        if not keep_store:
            self.store.close()


async def _running_loop() -> asyncio.AbstractEventLoop:
    """The loop this runs on (what a loop thread's loop is, asked from another thread)."""
    return asyncio.get_running_loop()


def shared_counters(
    store: StateStore, name: Callable[[str, str], str], *, prefix: str | None = None
) -> RedisCounters | None:
    """Per-actor counters on the Redis ``store`` is on (None when it is not Redis), actors
    named by ``name`` (a keyed pseudonym); ``prefix``: the keys' prefix, the store's by default
    (the dashboard's login guard counts under a prefix of its own)."""
    from .state.redis.client import connect_async
    from .state.redis.config import RedisConfig
    from .state.redis.counters import RedisCounters
    from .state.redis.resp import RespConnection

    config = getattr(store, "config", None)
    if not isinstance(config, RedisConfig):
        return None

    client = connect_async(config)
    # The batches go over lean connections of their own (see resp.py): one to a single
    # server, or one per Cluster node.
    fast = RespConnection(config) if config.mode == "single" else None

    def node(host: str, port: int) -> RespConnection:
        return RespConnection(dataclasses.replace(config, mode="single", nodes=((host, port),)))

    return RedisCounters(
        client,
        name=name,
        timeout=config.timeout,
        prefix=config.prefix if prefix is None else prefix,
        fast=fast,
        node=node if config.mode == "cluster" else None,
    )


async def _close_shared(counters: RedisCounters | None, tallies: SharedTallies | None) -> None:
    """Close the shared counters' and tallies' connections on the loop that made them."""
    if tallies is not None:
        tallies.close()
    if counters is not None:
        await counters.aclose()
