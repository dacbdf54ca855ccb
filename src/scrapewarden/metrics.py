"""Prometheus metrics: what the Warden decided, how fast, and how the shared state is doing.

Every Warden in a process feeds the same metrics (prometheus-client's default registry, so a
site that already exposes its own metrics shows ours next to them). docs/metrics.md lists them.

Two kinds of values, kept apart on purpose:

* Per decision (``scrapewarden_decisions_total``, ``…_detector_findings_total``,
  ``…_decision_seconds``, ``…_challenges_total``): counted by :func:`record_decision` and
  :func:`record_challenge`, called by the Warden, into a plain :class:`Tally` under one lock
  (~0.3 µs a decision; prometheus-client's own objects cost ~1 µs, ~2.5 µs in multiprocess
  mode where every value is a file write). The tally becomes metrics when scraped.
* The state's health (``scrapewarden_state_*``): read from the live objects — the Redis store's
  outage flag and outbox, the shared counters' ``degraded_since`` and ``failures`` — when
  someone scrapes (:class:`StateCollector`), so requests pay nothing for them.

Several processes (the proxy's ``--workers``, a site under gunicorn): prometheus-client's
multiprocess mode, chosen by ``PROMETHEUS_MULTIPROC_DIR`` being set before this module is first
imported. Each process then writes its values to files in that directory and the process that
serves ``/metrics`` adds them up. A collector cannot reach into other processes, so in that
mode a thread in every deciding process adds the tally and copies the state's health into its
files once a second (:data:`SYNC_SECONDS`), and once more at exit.

Serving them over HTTP is :mod:`scrapewarden.metrics_http`.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from .core.decision import Action, Decision

if TYPE_CHECKING:
    from .warden import Warden

log = logging.getLogger("scrapewarden")

MULTIPROCESS: bool = bool(getattr(values.ValueClass, "_multiprocess", False))
"""True when this process writes its values to ``PROMETHEUS_MULTIPROC_DIR`` (decided at import)."""

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SYNC_SECONDS = 1.0
"""How often, in multiprocess mode, the state's health is copied into the shared files."""
MAX_DETECTORS = 200
"""Distinct ``detector`` label values before further ones count as ``other``. Detector names
come from the code and the policy (``reputation.list:<name>``), never from requests; the bound
is a guard against a policy with thousands of lists."""

DECISION_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
"""10 µs to 1 s: a local decision takes tens of µs; shared counters add a Redis round trip
(~0.1-1 ms) and, when Redis is slow, up to their deadline (5 ms by default)."""

CHALLENGE_KINDS = ("pow", "nojs", "captcha")

_DECISIONS_HELP = "Decisions made, by action (in observe mode: the action that would have been taken)."
_FINDINGS_HELP = "Evidence items in decisions, by detector (the evidence name, e.g. rate, client.bot_ua)."
_SECONDS_HELP = "Time to decide on one request (engine, shared counters, event trail), in seconds."
_CHALLENGES_HELP = "Challenge answers checked, by outcome (passed, failed) and kind (pow, nojs, captcha)."

_ACTIONS = tuple(action.label for action in sorted(Action))


class Tally:
    """Per-decision counts in plain numbers under one lock.

    Cheaper than prometheus-client's objects on the request path (one lock instead of one per
    value, and no file write per value in multiprocess mode): a decision costs well under a
    microsecond here. The values are turned into metrics when scraped (:class:`TallyCollector`)
    or, in multiprocess mode, added to the files once a second (:class:`_Sync`).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero, with a fresh lock (also what a forked child needs: the lock may have been held)."""
        self._lock = threading.Lock()
        self.actions = [0] * len(_ACTIONS)
        self.buckets = [0] * (len(DECISION_BUCKETS) + 1)
        """Decisions per latency bucket, not cumulative; the last one is above every bound."""
        self.seconds = 0.0
        self.findings: dict[str, int] = {}
        self.challenges: dict[tuple[str, str], int] = {
            (outcome, how): 0 for how in CHALLENGE_KINDS for outcome in ("passed", "failed")
        }

    def decided(self, decision: Decision, seconds: float) -> None:
        bucket = bisect_left(DECISION_BUCKETS, seconds)  # the first bound >= seconds ("le")
        with self._lock:
            self.actions[decision.action] += 1
            self.buckets[bucket] += 1
            self.seconds += seconds
            if decision.evidence:
                findings = self.findings
                for evidence in decision.evidence:
                    name = evidence.detector
                    if name not in findings and len(findings) >= MAX_DETECTORS:
                        name = "other"
                    findings[name] = findings.get(name, 0) + 1

    def challenged(self, passed: bool, how: str) -> None:
        key = ("passed" if passed else "failed", how if how in CHALLENGE_KINDS else "other")
        with self._lock:
            self.challenges[key] = self.challenges.get(key, 0) + 1

    def snapshot(self) -> Tally:
        copy = Tally()
        with self._lock:
            copy.actions = list(self.actions)
            copy.buckets = list(self.buckets)
            copy.seconds = self.seconds
            copy.findings = dict(self.findings)
            copy.challenges = dict(self.challenges)
        return copy


TALLY = Tally()
record_decision = TALLY.decided
"""Count one decision that took ``seconds``; the Warden calls it for every decision."""
record_challenge = TALLY.challenged
"""Count one checked challenge answer."""


class TallyCollector:
    """The per-decision metrics, from the tally, when scraped (single-process mode)."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        now = self.tally.snapshot()
        decisions = CounterMetricFamily("scrapewarden_decisions", _DECISIONS_HELP, labels=["action"])
        for label, count in zip(_ACTIONS, now.actions, strict=True):
            decisions.add_metric([label], count)
        yield decisions
        findings = CounterMetricFamily("scrapewarden_detector_findings", _FINDINGS_HELP, labels=["detector"])
        for name, count in sorted(now.findings.items()):
            findings.add_metric([name], count)
        yield findings
        cumulative, buckets = 0, []
        for bound, count in zip((*map(floatToGoString, DECISION_BUCKETS), "+Inf"), now.buckets, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        seconds = HistogramMetricFamily("scrapewarden_decision_seconds", _SECONDS_HELP)
        seconds.add_metric([], buckets, now.seconds)
        yield seconds
        challenges = CounterMetricFamily(
            "scrapewarden_challenges", _CHALLENGES_HELP, labels=["outcome", "how"]
        )
        for (outcome, how), count in now.challenges.items():
            challenges.add_metric([outcome, how], count)
        yield challenges


# -- the state's health ---------------------------------------------------------------------------

PARTS = ("store", "counters")


@dataclass(slots=True)
class StateReading:
    """The shared state's health over every watched Warden in this process."""

    degraded: dict[str, bool] = field(default_factory=dict)
    """Per part present: True while any of them answers locally because Redis is away."""
    failures: dict[str, float] = field(default_factory=dict)
    """Per part present: calls Redis did not serve (failed, timed out, or skipped while degraded)."""
    outbox: int | None = None
    """Writes waiting to reach Redis; None without a Redis store."""
    dropped: dict[str, float] = field(default_factory=dict)
    """Events and other writes lost because the outbox was full (Redis store only)."""


class StateWatch:
    """The Wardens of this process whose state health is reported.

    Held weakly: a Warden dropped without :meth:`Warden.close` simply stops being read. Counts
    are kept as running totals here (the increase since each source was last read), so a
    Warden replaced on a policy reload does not make ``failures_total`` go backwards.
    """

    def __init__(self) -> None:
        self._wardens: weakref.WeakSet[Warden] = weakref.WeakSet()
        self._last: weakref.WeakKeyDictionary[Any, tuple[float, ...]] = weakref.WeakKeyDictionary()
        self._totals: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, warden: Warden) -> None:
        with self._lock:
            self._wardens.add(warden)

    def discard(self, warden: Warden) -> None:
        with self._lock:
            self._wardens.discard(warden)

    def _advance(self, source: Any, key: str, *now: float) -> None:
        """Add what ``source``'s counts grew by since last read to the totals named ``key``."""
        before = self._last.get(source, (0.0,) * len(now))
        for i, value in enumerate(now):
            name = f"{key}.{i}"
            self._totals[name] = self._totals.get(name, 0.0) + max(0.0, value - before[i])
        self._last[source] = now

    def read(self) -> StateReading:
        reading = StateReading()
        with self._lock:
            seen: set[int] = set()
            for warden in list(self._wardens):
                store, counters = getattr(warden, "store", None), getattr(warden, "counters", None)
                if store is not None and hasattr(store, "pending_writes") and id(store) not in seen:
                    seen.add(id(store))  # a reloaded Warden shares its predecessor's store
                    reading.degraded["store"] = reading.degraded.get("store", False) or bool(store.degraded)
                    reading.outbox = (reading.outbox or 0) + int(store.pending_writes)
                    self._advance(
                        store, "store", store.local_answers, store.dropped_events, store.dropped_writes
                    )
                if counters is not None and id(counters) not in seen:
                    seen.add(id(counters))
                    down = counters.degraded_since is not None
                    reading.degraded["counters"] = reading.degraded.get("counters", False) or down
                    self._advance(counters, "counters", counters.failures)
            for part in reading.degraded:
                reading.failures[part] = self._totals.get(f"{part}.0", 0.0)
            if "store" in reading.degraded:
                reading.dropped = {
                    "event": self._totals.get("store.1", 0.0),
                    "write": self._totals.get("store.2", 0.0),
                }
        return reading


STATE = StateWatch()


def watch_state(warden: Warden) -> None:
    """Report ``warden``'s state health (the Warden calls this when it is made)."""
    STATE.add(warden)
    if MULTIPROCESS:
        _start_sync()


def unwatch_state(warden: Warden) -> None:
    STATE.discard(warden)


_DEGRADED_HELP = "1 while this part of the shared state answers from local state because Redis is away."
_FAILURES_HELP = "Calls to Redis that did not get an answer in time (or were skipped while degraded)."
_OUTBOX_HELP = "Writes (events, bans, settings) queued locally, waiting to reach Redis."
_DROPPED_HELP = "Writes lost because the local outbox was full, by kind (event, write)."


class StateCollector:
    """The ``scrapewarden_state_*`` metrics, read when scraped (single-process mode)."""

    def __init__(self, watch: StateWatch) -> None:
        self.watch = watch

    def describe(self) -> Iterable[Metric]:
        return ()  # read lazily; nothing to check for name clashes up front

    def collect(self) -> Iterator[Metric]:
        reading = self.watch.read()
        degraded = GaugeMetricFamily("scrapewarden_state_degraded", _DEGRADED_HELP, labels=["part"])
        failures = CounterMetricFamily("scrapewarden_state_failures", _FAILURES_HELP, labels=["part"])
        for part in PARTS:
            if part in reading.degraded:
                degraded.add_metric([part], 1.0 if reading.degraded[part] else 0.0)
                failures.add_metric([part], reading.failures[part])
        if reading.degraded:  # nothing to say without a Redis store or shared counters
            yield degraded
            yield failures
        if reading.outbox is not None:
            yield GaugeMetricFamily("scrapewarden_state_outbox", _OUTBOX_HELP, value=reading.outbox)
            dropped = CounterMetricFamily("scrapewarden_state_dropped", _DROPPED_HELP, labels=["kind"])
            for kind, count in reading.dropped.items():
                dropped.add_metric([kind], count)
            yield dropped


class _Sync(threading.Thread):
    """Multiprocess mode: adds the tally and the state's health to this process's files every
    :data:`SYNC_SECONDS` (and once more when the process exits normally)."""

    def __init__(self, tally: Tally, watch: StateWatch) -> None:
        super().__init__(name="scrapewarden-metrics-sync", daemon=True)
        self.tally = tally
        self.watch = watch
        self._lock = threading.Lock()
        # Not registered anywhere: in multiprocess mode the files are what gets scraped.
        self.decisions = Counter("scrapewarden_decisions", _DECISIONS_HELP, ["action"], registry=None)
        self.findings = Counter("scrapewarden_detector_findings", _FINDINGS_HELP, ["detector"], registry=None)
        self.seconds = Histogram(
            "scrapewarden_decision_seconds", _SECONDS_HELP, buckets=DECISION_BUCKETS, registry=None
        )
        self.challenges = Counter(
            "scrapewarden_challenges", _CHALLENGES_HELP, ["outcome", "how"], registry=None
        )
        self.degraded = Gauge(
            "scrapewarden_state_degraded",
            _DEGRADED_HELP,
            ["part"],
            multiprocess_mode="livemax",
            registry=None,
        )
        self.outbox = Gauge(
            "scrapewarden_state_outbox", _OUTBOX_HELP, multiprocess_mode="livesum", registry=None
        )
        self.failures = Counter("scrapewarden_state_failures", _FAILURES_HELP, ["part"], registry=None)
        self.dropped = Counter("scrapewarden_state_dropped", _DROPPED_HELP, ["kind"], registry=None)
        self._pushed: dict[tuple[str, object], float] = {}

    def _grown(self, key: tuple[str, object], total: float) -> float:
        """How much ``total`` grew since last pushed (a file-backed counter can only be added to)."""
        pushed = self._pushed.get(key, 0.0)
        self._pushed[key] = max(total, pushed)
        return max(0.0, total - pushed)

    def _push(self, counter: Counter, key: str, labels: tuple[str, ...], total: float) -> None:
        counter.labels(*labels).inc(self._grown((key, labels), total))  # inc(0) shows the series

    def sync(self) -> None:
        with self._lock:  # the thread and the exit hook
            now = self.tally.snapshot()
            for label, count in zip(_ACTIONS, now.actions, strict=True):
                self._push(self.decisions, "decisions", (label,), count)
            for name, count in now.findings.items():
                self._push(self.findings, "findings", (name,), count)
            for (outcome, how), count in now.challenges.items():
                self._push(self.challenges, "challenges", (outcome, how), count)
            # A Histogram takes one observation at a time; the tally has counts per bucket.
            # Its bucket and sum values are added to directly (attributes prometheus-client
            # has kept since its first releases; the multiprocess test checks the result).
            histogram: Any = self.seconds
            for i, count in enumerate(now.buckets):
                grown = self._grown(("bucket", i), count)
                if grown:
                    histogram._buckets[i].inc(grown)
            histogram._sum.inc(self._grown(("seconds", 0), now.seconds))

            reading = self.watch.read()
            for part, down in reading.degraded.items():
                self.degraded.labels(part).set(1.0 if down else 0.0)
                self._push(self.failures, "failures", (part,), reading.failures[part])
            if reading.outbox is not None:
                self.outbox.set(reading.outbox)
                for kind, lost in reading.dropped.items():
                    self._push(self.dropped, "dropped", (kind,), lost)

    def _sync_quietly(self) -> bool:
        try:
            self.sync()
            return True
        except Exception:  # never let a metrics bug end the process
            log.exception("metrics: could not write this process's metrics")
            return False

    def run(self) -> None:
        stop = threading.Event()
        while not stop.wait(SYNC_SECONDS):
            if not self._sync_quietly():
                stop.wait(60.0)  # say it once a minute, not every second


_SYNC: _Sync | None = None
if not MULTIPROCESS:
    REGISTRY.register(TallyCollector(TALLY))
    REGISTRY.register(StateCollector(STATE))


def _start_sync() -> None:
    """Multiprocess mode: start this process's sync thread, once."""
    global _SYNC
    if _SYNC is None:
        _SYNC = _Sync(TALLY, STATE)
        _SYNC.start()


def _last_sync() -> None:
    if _SYNC is not None:
        _SYNC._sync_quietly()


def _in_forked_child() -> None:
    """A process forked after Wardens were made (gunicorn --preload): it counts its own
    decisions from zero (its parent's are its parent's to report) with a sync thread of its
    own, as threads do not survive a fork."""
    global _SYNC
    TALLY.reset()
    STATE._lock = threading.Lock()
    if _SYNC is not None:
        _SYNC = None
        _start_sync()


atexit.register(_last_sync)
if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork either
    os.register_at_fork(after_in_child=_in_forked_child)
