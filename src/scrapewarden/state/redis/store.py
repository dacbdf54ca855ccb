"""State on Redis / Valkey (one server, Cluster or Sentinel), shared by every instance.

Design, and why:

* Each operation is one round trip: a single command, or one Lua script (``lua/*.lua``, loaded
  once per process and called by SHA) whose keys all share one hash tag, so the same scripts
  run on Redis Cluster. The key layout is in :class:`~.codec.Keys` and docs/state.md.
* ``record_event`` only queues (the request path never waits for Redis); a writer thread sends
  queued events in batches, one script call per batch, each batch marked so that a retry after
  a lost reply does not store it twice.
* Redis down or slow must not stall requests. Every call has a small socket timeout (20 ms by
  default). The first call that fails marks the store *degraded*: from then on no request
  touches Redis; reads are answered from a local mirror (bans, offences and settings last seen,
  plus what this process wrote since) and writes are applied to the mirror and queued, in
  order, in a bounded outbox. The writer thread alone probes Redis (PING, backing off up to
  2 s); when it answers, the outbox is replayed in order and only then do reads go back to
  Redis, so the shared state is used again already holding what was written meanwhile.
* Replays are idempotent: a ban is identified by its creation time (storing it twice is not a
  second offence), a replayed setting does not overwrite a value the shared store already has
  (keys created on first use, such as ``challenge.key``, were made by another instance first
  and are already in use there; the conflict is logged), a replayed single-use mark only
  extends what it marks.
* ``spend_once`` while degraded is decided by local memory, as ChallengeService does when a
  store raises: an answer stays single-use on this instance, and each instance cut off from
  Redis could accept it once during the outage. The mark is queued and reaches Redis later.
* Event reads (``events``, ``recent_events``) while degraded raise :class:`StateUnavailableError`:
  the local part of the trail would mislead; nothing on the request path reads events.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from redis import exceptions as rx

from ...core.audit import GENESIS, AuditEntry, AuditRecord, chain_after
from ...core.incidents import Incident
from .._copy import check_kind, check_user, copy_allow, copy_ban
from ..base import Allow, ApiToken, Ban, BanKind, Event, User
from ..errors import StateClosedError, StateError
from ..memory import MemoryStore
from . import codec
from .client import connect
from .config import RedisConfig

log = logging.getLogger(__name__)

BATCH_SIZE = 500
BATCH_SECONDS = 0.05
BATCH_MARK_SECONDS = 3600
"""How long a written batch's marker lives (replays come far sooner)."""
PRUNE_CHUNK = 1000
AUTO_PRUNE_INTERVAL = 3600.0
AUDIT_TRIES = 100
"""Appends retried when other writers keep moving the chain's head (each try is one call)."""
PROBE_FIRST = 0.1
PROBE_MAX = 2.0
WARN_EVERY = 60.0
CLOSE_FLUSH_SECONDS = 2.0

# What "Redis is unreachable or too slow" looks like (MasterNotFoundError, BusyLoadingError
# and the cluster's connection errors are ConnectionErrors; ReadOnlyError: mid-failover).
UNAVAILABLE: tuple[type[BaseException], ...] = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.ClusterDownError,
    rx.RedisClusterException,
    rx.ReadOnlyError,
    rx.TryAgainError,
    OSError,
)


class StateUnavailableError(StateError):
    """The shared store cannot be reached and the local state cannot answer this."""


_SCRIPTS = (
    "add_ban",
    "remove_ban",
    "list_bans",
    "prune_bans",
    "record_events",
    "prune_events",
    "spend_once",
    "append_audit",
    "save_incident",
    "prune_allows",
)


def _token() -> str:
    # Unique across Redis restarts too, unlike a counter that starts again at 0.
    return uuid.uuid4().hex


def _script_text(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")


@dataclass(slots=True)
class _Op:
    """A write waiting in the outbox: ``kind`` and its arguments."""

    kind: str
    args: tuple[Any, ...]
    batch: str | None = field(default=None)


class RedisStore:
    """A :class:`~scrapewarden.state.base.StateStore` on Redis (see module docs)."""

    def __init__(
        self,
        config: RedisConfig,
        *,
        retention_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
        client: Any = None,
    ) -> None:
        if retention_seconds is not None and retention_seconds <= 0:
            raise ValueError("retention_seconds must be positive (or None to keep events forever)")
        self.config = config
        self.url = config.url
        self.retention_seconds = retention_seconds
        self.keys = codec.Keys(config.prefix)
        self._clock = clock
        self._client_obj = client
        self._bulk_obj: Any = None
        self._client_lock = threading.Lock()
        self._scripts: dict[str, Any] = {}
        # A Cluster client's pools cannot wait for a free connection, so calls are bounded here.
        self._slots = threading.BoundedSemaphore(config.max_connections) if config.mode == "cluster" else None
        self._mirror = MemoryStore(url=f"{config.url} (local mirror)")
        self._bans_cache: tuple[str, list[Ban]] | None = None
        """(version token, every ban) as last fetched; never changed in place."""

        self.local_fallback = True
        """False: raise :class:`StateUnavailableError` instead of answering from local state
        while Redis is unreachable (the CLI: an operator must know a ban was not stored)."""

        # Counters an operator (or a metrics exporter) reads.
        self.outages = 0
        """Times Redis was found unreachable."""
        self.local_answers = 0
        """Calls answered from local state because Redis was unreachable."""
        self.replayed_writes = 0
        """Writes made during an outage and sent to Redis once it came back."""
        self.dropped_events = 0
        """Events lost: the outbox was full, or the store was closed."""
        self.dropped_writes = 0
        """Bans, settings or marks lost because the outbox was full (or closed while down)."""
        self.lost_settings = 0
        """Settings written during an outage that lost to a value already in Redis."""

        self._cond = threading.Condition()
        self._outbox: deque[_Op] = deque()
        self._state_ops = 0  # non-event ops in the outbox
        self._inflight: list[_Op] = []  # the batch being sent
        self._enqueued = 0
        self._done = 0
        self._down_since: float | None = None
        self._last_warning = float("-inf")
        self._closed = False
        self._closing = False
        self._last_prune = float("-inf")
        self._audit_known: tuple[int, str] = (0, GENESIS)
        """The chain's head as last seen: the first guess of the next append."""
        self._writer = threading.Thread(
            target=self._run_writer, name="scrapewarden-redis-writer", daemon=True
        )
        self._writer.start()
        atexit.register(self.close)

    # -- health ---------------------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True while Redis is considered unreachable and local state answers."""
        return self._down_since is not None

    @property
    def pending_writes(self) -> int:
        with self._cond:
            return len(self._outbox)

    def _client(self, *, bulk: bool = False) -> Any:
        """The client for quick calls, or (``bulk``) the one that waits ``bulk_timeout``."""
        client = self._bulk_obj if bulk else self._client_obj
        if client is None:
            with self._client_lock:
                if bulk:
                    if self._bulk_obj is None:
                        self._bulk_obj = connect(self.config, bulk=True)
                    client = self._bulk_obj
                else:
                    if self._client_obj is None:
                        self._client_obj = connect(self.config)
                    client = self._client_obj
        return client

    def _script(self, name: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._client().register_script(_script_text(name))
            self._scripts[name] = script
        return script

    def _run(self, name: str, keys: list[str], args: list[Any], *, bulk: bool = False) -> Any:
        return self._script(name)(keys=keys, args=args, client=self._client(bulk=bulk))

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """At most ``max_connections`` calls at once (Cluster only; other pools wait by themselves)."""
        slots = self._slots
        if slots is None:
            yield
            return
        if not slots.acquire(timeout=self.config.connect_timeout):
            raise rx.ConnectionError("no free Redis connection within connect_timeout")
        try:
            yield
        finally:
            slots.release()

    def _trip(self, exc: BaseException) -> None:
        """Redis failed us: answer locally until the writer finds it back."""
        with self._cond:
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
                self.outages += 1
                self._cond.notify_all()
        if first:
            self._last_warning = time.monotonic()
            log.warning(
                "Redis state %s unreachable (%s: %s); deciding on local state until it is back",
                self.url,
                type(exc).__name__,
                exc,
            )

    def _local(self) -> None:
        self.local_answers += 1

    def _guard(self, what: str, call: Callable[[], Any], fallback: Callable[[], Any]) -> Any:
        """``call()`` against Redis, or ``fallback()`` when Redis is (or just went) away."""
        self._check_open()
        if self._down_since is None:
            try:
                with self._slot():
                    return call()
            except UNAVAILABLE as exc:
                self._trip(exc)
            except rx.RedisError as exc:
                raise StateError(f"Redis state {self.url}: {what} failed: {exc}") from exc
        if not self.local_fallback:
            raise StateUnavailableError(f"Redis state {self.url} is unreachable: {what} not done")
        self._local()
        return fallback()

    # -- the outbox -----------------------------------------------------------------------------

    def _enqueue(self, op: _Op) -> None:
        with self._cond:
            if len(self._outbox) >= self.config.max_pending and not self._make_room(op):
                return
            self._outbox.append(op)
            self._enqueued += 1
            if op.kind != "event":
                self._state_ops += 1
            self._cond.notify_all()

    def _make_room(self, op: _Op) -> bool:
        # Called with the lock held. Bans and settings matter more than one more event.
        if op.kind == "event":
            self.dropped_events += 1
            return False
        if op.kind == "audit":
            # The audit trail must be complete: over the bound rather than lose an entry (they
            # are few: one per ban or step, never one per request).
            self._evict_oldest_event()
            return True
        if self._evict_oldest_event():
            return True
        if self._inflight:
            # Only events being sent right now could make room: go over the bound until that
            # send is over (it is bounded by the timeout), then _trim() restores it.
            return True
        self.dropped_writes += 1
        log.error("Redis state %s: local outbox full; a %s write is lost", self.url, op.kind)
        return False

    def _evict_oldest_event(self) -> bool:
        inflight = {id(sent) for sent in self._inflight}
        for i, queued in enumerate(self._outbox):
            if queued.kind != "event" or id(queued) in inflight:
                continue
            del self._outbox[i]
            self.dropped_events += 1
            self._done += 1
            if queued.batch is not None:
                # A batch may shrink on retry (if it was written, so were these), never grow.
                mark, _, size = queued.batch.partition("/")
                smaller = f"{mark}/{int(size) - 1}"
                for other in self._outbox:
                    if other.batch == queued.batch:
                        other.batch = smaller
            return True
        return False

    def _trim(self) -> None:
        # Lock held, nothing in flight: back within max_pending, oldest events first.
        while len(self._outbox) > self.config.max_pending and self._evict_oldest_event():
            pass

    def _queue_state_write(self, op: _Op) -> bool:
        """Queue a state write if it must not overtake queued ones; True if queued."""
        if not self._must_queue():
            return False
        self._enqueue(op)
        return True

    def _must_queue(self) -> bool:
        # Degraded, or writes from the outage still on their way: a direct write now could
        # overtake them (a ban removed before the replay adds it back, say).
        self._check_open()
        with self._cond:
            down = self._down_since is not None
            queue = down or self._state_ops > 0
        if down and not self.local_fallback:
            raise StateUnavailableError(f"Redis state {self.url} is unreachable: nothing written")
        return queue

    # -- bans -----------------------------------------------------------------------------------

    def add_ban(self, ban: Ban) -> Ban:
        check_kind(ban.kind)
        self._check_open()
        ban = copy_ban(ban)
        if self._queue_state_write(_Op("add_ban", (copy_ban(ban),))):
            self._local()
            return self._mirror_add(ban)

        def call() -> Ban:
            stored = copy_ban(ban)
            stored.offences = int(self._send_add_ban(ban))
            self._mirror.add_ban(stored)
            return stored

        def fallback() -> Ban:
            self._enqueue(_Op("add_ban", (copy_ban(ban),)))
            return self._mirror_add(ban)

        result: Ban = self._guard("add_ban", call, fallback)
        return result

    def _send_add_ban(self, ban: Ban, *, replay: bool = False) -> int:
        k = self.keys
        value = str(ban.value)
        keys = [k.ban(ban.kind, value), k.expiry, k.history(ban.kind, value), k.bans_version]
        args = [codec.member(ban.kind, value), *codec.ban_args(ban), _token(), "1" if replay else "0"]
        return int(self._run("add_ban", keys, args))

    def _mirror_add(self, ban: Ban) -> Ban:
        # Offences known locally: the mirror's history, and what the last seen ban said.
        known = self._mirror.get_ban(ban.kind, ban.value)
        floor = known.offences + (0 if known.created == ban.created else 1) if known else 0
        stored = copy_ban(ban)
        stored.offences = max(ban.offences, floor)
        return self._mirror.add_ban(stored)

    def remove_ban(self, kind: BanKind, value: str) -> bool:
        self._check_open()
        if self._queue_state_write(_Op("remove_ban", (kind, value, self._clock()))):
            self._local()
            return self._mirror.remove_ban(kind, value)

        def call() -> bool:
            removed = bool(self._send_remove_ban(kind, value))
            self._mirror.remove_ban(kind, value)  # only now: a failed send falls back to it
            return removed

        def fallback() -> bool:
            self._enqueue(_Op("remove_ban", (kind, value, self._clock())))
            return self._mirror.remove_ban(kind, value)

        removed: bool = self._guard("remove_ban", call, fallback)
        return removed

    def _send_remove_ban(self, kind: str, value: str, made_at: float | None = None) -> int:
        keys = [self.keys.ban(kind, value), self.keys.expiry, self.keys.bans_version]
        made = "" if made_at is None else repr(float(made_at))
        return int(self._run("remove_ban", keys, [codec.member(kind, value), _token(), made]))

    def get_ban(self, kind: BanKind, value: str) -> Ban | None:
        def call() -> Ban | None:
            fields = self._client().hgetall(self.keys.ban(kind, value))
            if not fields:
                self._mirror.remove_ban(kind, value)
                return None
            ban = codec.ban_from_hash(fields)
            self._mirror.add_ban(copy_ban(ban))
            return ban

        result: Ban | None = self._guard("get_ban", call, lambda: self._mirror.get_ban(kind, value))
        return result

    def list_bans(self, now: float | None = None) -> list[Ban]:
        """All bans (active at ``now`` if given). Every instance asks every two seconds, so the
        list is fetched only when it changed (one small round trip otherwise)."""

        def call() -> list[Ban]:
            # A quick look at the version first: a frozen server costs one short timeout here,
            # and only a list that changed is fetched, with the longer bulk timeout.
            known = self._bans_cache
            version = self._client().get(self.keys.bans_version) or ""
            if known is None or known[0] != version:
                keys = [self.keys.expiry, self.keys.bans_version]
                reply = self._run("list_bans", keys, [self.keys.ban_prefix, "\0"], bulk=True)
                bans = [codec.ban_from_hash(codec.pairs_to_dict(row)) for row in json.loads(reply[1])]
                bans.sort(key=lambda b: (b.created, b.kind, b.value))
                self._sync_mirror(bans)
                known = self._bans_cache = (str(reply[0]), bans)
            return [copy_ban(b) for b in known[1] if now is None or b.active(now)]

        result: list[Ban] = self._guard("list_bans", call, lambda: self._mirror.list_bans(now))
        return result

    def _sync_mirror(self, bans: list[Ban]) -> None:
        """Make the mirror's bans what Redis just said."""
        fresh = {(b.kind, b.value) for b in bans}
        for old in self._mirror.list_bans():
            if (old.kind, old.value) not in fresh:
                self._mirror.remove_ban(old.kind, old.value)
        for ban in bans:
            self._mirror.add_ban(ban)  # the mirror stores a copy of its own

    def prior_offences(self, kind: BanKind, value: str) -> int:
        def fallback() -> int:
            known = self._mirror.get_ban(kind, value)
            return max(self._mirror.prior_offences(kind, value), known.offences if known else 0)

        count: int = self._guard(
            "prior_offences", lambda: int(self._client().zcard(self.keys.history(kind, value))), fallback
        )
        return count

    def prune_bans(self, before: float) -> int:
        def call() -> int:
            self._mirror.prune_bans(before)
            total = 0
            while True:
                args = ["(" + repr(float(before)), self.keys.ban_prefix, PRUNE_CHUNK, _token()]
                keys = [self.keys.expiry, self.keys.bans_version]
                n = int(self._run("prune_bans", keys, args, bulk=True))
                total += n
                if n < PRUNE_CHUNK:
                    return total

        def fallback() -> int:
            # Pruning the shared store waits for Redis; the next retention pass catches up.
            self._mirror.prune_bans(before)
            return 0

        pruned: int = self._guard("prune_bans", call, fallback)
        return pruned

    # -- operator allows ------------------------------------------------------------------------
    # One hash, kind:value -> the allow as JSON (codec.Keys.allows). Written straight to Redis,
    # never queued: an allow or a lift made while Redis is away fails loudly, since the operator
    # must know whether the actor is let through. Reads fall back to the allows last seen (the
    # mirror), so every instance keeps honouring them through an outage. Allows are few, so
    # the Warden's reload every two seconds reads the whole hash (one HGETALL).

    def add_allow(self, allow: Allow) -> Allow:
        check_kind(allow.kind)
        stored = copy_allow(allow)

        def call() -> Allow:
            member = codec.member(stored.kind, stored.value)
            self._client().hset(self.keys.allows, member, codec.allow_json(stored))
            self._mirror.add_allow(stored)
            return copy_allow(stored)

        result: Allow = self._direct("add_allow", call)
        return result

    def remove_allow(self, kind: BanKind, value: str) -> bool:
        def call() -> bool:
            removed = bool(self._client().hdel(self.keys.allows, codec.member(kind, value)))
            self._mirror.remove_allow(kind, value)
            return removed

        removed: bool = self._direct("remove_allow", call)
        return removed

    def get_allow(self, kind: BanKind, value: str) -> Allow | None:
        def call() -> Allow | None:
            raw = self._client().hget(self.keys.allows, codec.member(kind, value))
            if raw is None:
                self._mirror.remove_allow(kind, value)
                return None
            allow = codec.allow_from_json(raw)
            self._mirror.add_allow(allow)
            return allow

        result: Allow | None = self._guard("get_allow", call, lambda: self._mirror.get_allow(kind, value))
        return result

    def list_allows(self, now: float | None = None) -> list[Allow]:
        def call() -> list[Allow]:
            allows = []
            for member, raw in self._client(bulk=True).hgetall(self.keys.allows).items():
                try:
                    allows.append(codec.allow_from_json(raw))
                except (ValueError, KeyError, TypeError):
                    log.warning("Redis state %s: ignoring an unreadable allow %r", self.url, member[:80])
            allows.sort(key=lambda a: (a.created, a.kind, a.value))
            fresh = {(a.kind, a.value) for a in allows}
            for old in self._mirror.list_allows():
                if (old.kind, old.value) not in fresh:
                    self._mirror.remove_allow(old.kind, old.value)
            for allow in allows:
                self._mirror.add_allow(allow)
            return [a for a in allows if now is None or a.active(now)]

        result: list[Allow] = self._guard("list_allows", call, lambda: self._mirror.list_allows(now))
        return result

    def prune_allows(self, before: float) -> int:
        def call() -> int:
            self._mirror.prune_allows(before)
            return int(self._run("prune_allows", [self.keys.allows], [repr(float(before))]))

        def fallback() -> int:
            self._mirror.prune_allows(before)
            return 0

        pruned: int = self._guard("prune_allows", call, fallback)
        return pruned

    # -- events ---------------------------------------------------------------------------------

    def record_event(self, event: Event) -> None:
        """Queue ``event``; returns at once. Never raises (full outbox, closed store)."""
        if self._closed:
            with self._cond:
                self.dropped_events += 1
            return
        self._enqueue(_Op("event", (codec.event_fields(event),)))

    def events(self, since_id: int = 0, limit: int = 100) -> list[Event]:
        if limit <= 0:
            self._check_open()
            return []
        start = f"{max(0, int(since_id)) + 1}-0"
        rows = self._read_events(
            lambda: self._client(bulk=True).xrange(self.keys.stream, start, "+", count=limit)
        )
        return [codec.event_from_entry(i, f) for i, f in rows]

    def recent_events(self, limit: int = 100) -> list[Event]:
        """The newest ``limit`` events, oldest first (what ``events tail`` shows)."""
        if limit <= 0:
            self._check_open()
            return []
        rows = self._read_events(
            lambda: self._client(bulk=True).xrevrange(self.keys.stream, "+", "-", count=limit)
        )
        return [codec.event_from_entry(i, f) for i, f in reversed(rows)]

    def _read_events(self, read: Callable[[], Any]) -> Any:
        def fallback() -> Any:
            raise StateUnavailableError(
                f"Redis state {self.url} is unreachable; the event trail cannot be read until it is back"
            )

        return self._guard("reading events", read, fallback)

    def prune_events(self, before: float) -> int:
        def call() -> int:
            total = 0
            while True:
                args = [repr(float(before)), PRUNE_CHUNK]
                n = int(self._run("prune_events", [self.keys.stream], args, bulk=True))
                total += n
                if n < PRUNE_CHUNK:
                    return total

        pruned: int = self._guard("prune_events", call, lambda: 0)
        return pruned

    def _send_events(self, batch: list[_Op]) -> None:
        k = self.keys
        assert batch[0].batch is not None
        mark = batch[0].batch.partition("/")[0]  # the size part may shrink between tries
        args: list[Any] = [self.config.max_events, BATCH_MARK_SECONDS]
        for op in batch:
            fields = op.args[0]
            args.append(len(fields) // 2)
            args.extend(fields)
        self._run("record_events", [k.stream, k.event_seq, k.batch_prefix + mark], args)

    # -- single-use marks -----------------------------------------------------------------------

    def spend_once(self, key: str, until: float, now: float) -> bool:
        self._check_open()
        op = _Op("spend_once", (key, until, now))
        if self._must_queue():
            self._local()
            fresh = self._mirror.spend_once(key, until, now)
            if fresh:
                self._enqueue(op)
            return fresh

        def call() -> bool:
            spent = self._send_spend(key, until, now)
            if spent:
                self._mirror.spend_once(key, until, now)
            return spent

        def fallback() -> bool:
            fresh = self._mirror.spend_once(key, until, now)
            if fresh:
                self._enqueue(op)
            return fresh

        result: bool = self._guard("spend_once", call, fallback)
        return result

    def is_spent(self, key: str, now: float) -> bool:
        def call() -> bool:
            until = self._client().get(self.keys.spent_prefix + key)
            if until is None:
                return False
            # Kept in the mirror too, so the mark still holds here while Redis is unreachable.
            self._mirror.spend_once(key, float(until), now)
            return float(until) > now

        def fallback() -> bool:
            return self._mirror.is_spent(key, now)

        result: bool = self._guard("is_spent", call, fallback)
        return result

    def _send_spend(self, key: str, until: float, now: float) -> bool:
        ttl = max(1, math.ceil((float(until) - float(now)) * 1000))
        args = [repr(float(until)), repr(float(now)), ttl]
        return bool(self._run("spend_once", [self.keys.spent_prefix + key], args))

    # -- settings -------------------------------------------------------------------------------

    def get_setting(self, name: str) -> str | None:
        def call() -> str | None:
            value = self._client().hget(self.keys.settings, codec.text(name))
            if value is not None:
                self._mirror.set_setting(name, value)
            return value  # type: ignore[no-any-return]

        result: str | None = self._guard("get_setting", call, lambda: self._mirror.get_setting(name))
        return result

    def set_setting(self, name: str, value: str) -> None:
        self._check_open()
        if self._queue_state_write(_Op("set_setting", (name, value))):
            self._local()
            self._mirror.set_setting(name, value)
            return

        def call() -> None:
            self._client().hset(self.keys.settings, codec.text(name), codec.text(value))
            self._mirror.set_setting(name, value)

        def fallback() -> None:
            self._enqueue(_Op("set_setting", (name, value)))
            self._mirror.set_setting(name, value)

        self._guard("set_setting", call, fallback)

    def _replay_setting(self, name: str, value: str) -> None:
        if self._client().hsetnx(self.keys.settings, codec.text(name), codec.text(value)):
            return
        current = self._client().hget(self.keys.settings, codec.text(name))
        if current != value:
            self.lost_settings += 1
            if current is not None:
                self._mirror.set_setting(name, current)
            log.warning(
                "Redis state %s: setting %r written during the outage kept the value Redis already had",
                self.url,
                name,
            )

    # -- audit log ------------------------------------------------------------------------------

    def append_audit(self, record: AuditRecord) -> AuditEntry | None:
        """Chain ``record`` (see append_audit.lua). While Redis is unreachable the record is
        queued unchained, ahead of nothing written after it, and chained when it is replayed:
        the chain's order is the order the writes reach Redis. Returns None then."""
        self._check_open()
        # One token per record: a retry after a lost reply finds it and does not log twice.
        op = _Op("audit", (record, _token()))
        if self._queue_state_write(op):
            self._local()
            return None

        def fallback() -> None:
            self._enqueue(op)

        entry: AuditEntry | None = self._guard("append_audit", lambda: self._send_audit(*op.args), fallback)
        return entry

    def _send_audit(self, record: AuditRecord, token: str) -> AuditEntry | None:
        keys = [self.keys.audit_log, self.keys.audit_head, self.keys.audit_mark_prefix + token]
        seq, digest = self._audit_known
        for _ in range(AUDIT_TRIES):
            entry = chain_after(record, seq, digest)
            args = [
                str(seq),
                digest,
                entry.to_json(),
                str(entry.seq),
                entry.hash,
                GENESIS,
                BATCH_MARK_SECONDS,
            ]
            reply = self._run("append_audit", keys, args)
            if int(reply[0]) == 1:
                self._audit_known = (entry.seq, entry.hash)
                return entry
            if int(reply[0]) == 2:
                return None  # appended by an earlier try whose reply was lost
            seq, digest = int(reply[1]), str(reply[2])
        raise StateError(f"Redis state {self.url}: the audit chain kept moving; entry not appended")

    def audit_entries(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Entries in stored (list) order from position ``after_seq``: in an intact chain entry
        ``n`` sits at position ``n - 1``; in a broken one, verification reports what it finds."""
        if limit <= 0:
            self._check_open()
            return []
        start = max(0, int(after_seq))

        def read() -> Any:
            return self._client(bulk=True).lrange(self.keys.audit_log, start, start + int(limit) - 1)

        rows = self._read_shared("the audit log", read)
        return [AuditEntry.from_json(row) for row in rows]

    def audit_head(self) -> tuple[int, str] | None:
        fields = self._read_shared(
            "the audit head", lambda: self._client().hmget(self.keys.audit_head, ["seq", "hash"])
        )
        if not fields or fields[0] is None:
            return None
        return int(fields[0]), str(fields[1])

    def _read_shared(self, what: str, read: Callable[[], Any]) -> Any:
        def fallback() -> Any:
            raise StateUnavailableError(f"Redis state {self.url} is unreachable; {what} cannot be read")

        self._await_recovery()
        if self.pending_writes and self._state_ops:
            self.flush()  # this process's own queued writes first, so it reads what it wrote
        return self._guard(f"reading {what}", read, fallback)

    def _await_recovery(self) -> None:
        """A moment's grace for calls that cannot be answered locally (audit and incident reads,
        incident saves): after a blip (one slow reply trips the store) the writer's probe finds
        Redis back within a fraction of a second; wait up to ``bulk_timeout`` for that."""
        with self._cond:
            if self._down_since is not None and not self._closed:
                self._cond.wait_for(
                    lambda: self._down_since is None or self._closed, timeout=self.config.bulk_timeout
                )

    # -- incidents ------------------------------------------------------------------------------

    def save_incident(self, incident: Incident) -> bool:
        expected = int(incident.version)
        data = incident.to_dict()
        data["version"] = expected + 1
        doc = json.dumps(data, ensure_ascii=False)
        keys = [self.keys.incident_docs, self.keys.incident_versions]

        def call() -> bool:
            # The bulk timeout: an incident document may hold many thousand record ids.
            return bool(int(self._run("save_incident", keys, [incident.id, str(expected), doc], bulk=True)))

        def fallback() -> bool:
            raise StateUnavailableError(
                f"Redis state {self.url} is unreachable; incident {incident.id} not saved"
            )

        self._await_recovery()
        saved: bool = self._guard("save_incident", call, fallback)
        if saved:
            incident.version = expected + 1
        return saved

    def get_incident(self, incident_id: str) -> Incident | None:
        doc = self._read_shared(
            "incidents", lambda: self._client(bulk=True).hget(self.keys.incident_docs, incident_id)
        )
        return Incident.from_dict(json.loads(doc)) if doc is not None else None

    def list_incidents(self) -> list[Incident]:
        docs = self._read_shared("incidents", lambda: self._client(bulk=True).hvals(self.keys.incident_docs))
        found = [Incident.from_dict(json.loads(doc)) for doc in docs]
        found.sort(key=lambda i: (i.opened_at, i.id))
        return found

    # -- dashboard users and API tokens --------------------------------------------------------
    # Written straight to Redis, never queued: a user added or a token revoked while Redis is
    # away must fail loudly, not take effect later. Reads fall back to the last seen values
    # (the mirror), so people already known can still log in during an outage.

    def _direct(self, what: str, call: Callable[[], Any]) -> Any:
        def fallback() -> Any:
            raise StateUnavailableError(f"Redis state {self.url} is unreachable: {what} not done")

        self._check_open()
        if self._down_since is not None:
            fallback()
        return self._guard(what, call, fallback)

    def put_user(self, user: User) -> None:
        check_user(user)

        def call() -> None:
            self._client().hset(self.keys.users, codec.text(user.name), _user_json(user))
            self._mirror.put_user(user)

        self._direct("put_user", call)

    def get_user(self, name: str) -> User | None:
        def call() -> User | None:
            raw = self._client().hget(self.keys.users, codec.text(name))
            if raw is None:
                self._mirror.remove_user(name)
                return None
            user = _user_from_json(raw)
            self._mirror.put_user(user)
            return user

        result: User | None = self._guard("get_user", call, lambda: self._mirror.get_user(name))
        return result

    def list_users(self) -> list[User]:
        def call() -> list[User]:
            users = [_user_from_json(raw) for raw in self._client(bulk=True).hvals(self.keys.users)]
            return sorted(users, key=lambda u: u.name)

        result: list[User] = self._guard("list_users", call, self._mirror.list_users)
        return result

    def remove_user(self, name: str) -> bool:
        def call() -> bool:
            client = self._client()
            removed = bool(client.hdel(self.keys.users, codec.text(name)))
            # Its tokens too (a token of a user who no longer exists is refused anyway).
            stale = [
                digest
                for digest, raw in client.hgetall(self.keys.tokens).items()
                if json.loads(raw).get("user") == name
            ]
            if stale:
                client.hdel(self.keys.tokens, *stale)
            self._mirror.remove_user(name)
            return removed

        removed: bool = self._direct("remove_user", call)
        return removed

    def add_token(self, token: ApiToken) -> None:
        def call() -> None:
            self._client().hset(self.keys.tokens, codec.text(token.digest), _token_json(token))
            self._mirror.add_token(token)

        self._direct("add_token", call)

    def get_token(self, digest: str) -> ApiToken | None:
        def call() -> ApiToken | None:
            raw = self._client().hget(self.keys.tokens, codec.text(digest))
            if raw is None:
                self._mirror.remove_token(digest)
                return None
            token = _token_from_json(raw)
            self._mirror.add_token(token)
            return token

        result: ApiToken | None = self._guard("get_token", call, lambda: self._mirror.get_token(digest))
        return result

    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        def call() -> list[ApiToken]:
            tokens = [_token_from_json(raw) for raw in self._client(bulk=True).hvals(self.keys.tokens)]
            mine = [t for t in tokens if user is None or t.user == user]
            return sorted(mine, key=lambda t: (t.created, t.digest))

        result: list[ApiToken] = self._guard("list_tokens", call, lambda: self._mirror.list_tokens(user))
        return result

    def remove_token(self, digest: str) -> bool:
        def call() -> bool:
            removed = bool(self._client().hdel(self.keys.tokens, codec.text(digest)))
            self._mirror.remove_token(digest)
            return removed

        removed: bool = self._direct("remove_token", call)
        return removed

    # -- the writer thread ----------------------------------------------------------------------

    def _run_writer(self) -> None:
        backoff = PROBE_FIRST
        while True:
            with self._cond:
                while not self._outbox and self._down_since is None and not self._closing:
                    self._cond.wait(timeout=self._prune_wait())
                    if self._prune_due():
                        break
                if self._closing and (not self._outbox or self._down_since is not None):
                    return
                down = self._down_since is not None
                if not down and self._outbox and self._state_ops == 0 and len(self._outbox) < BATCH_SIZE:
                    # Lone events may wait a moment for company: one call per event is slow.
                    self._cond.wait(timeout=BATCH_SECONDS)
            if down:
                if self._wait_closing(backoff):
                    return
                if not self._probe():
                    backoff = min(PROBE_MAX, backoff * 2)
                    self._warn_still_down()
                    continue
                backoff = PROBE_FIRST
            self._drain(recovering=down)
            self._maybe_auto_prune()

    def _wait_closing(self, seconds: float) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: self._closing, timeout=seconds)
            return self._closing and not self._outbox

    def _probe(self) -> bool:
        # On a Cluster, PING reaches any one node: ask the nodes holding this store's keys.
        try:
            k = self.keys
            with self._slot():
                self._client().ping()
                for key in (k.expiry, k.event_seq, k.settings):
                    self._client().exists(key)
            return True
        except UNAVAILABLE:
            return False
        except rx.RedisError:
            return False

    def _warn_still_down(self) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            log.warning(
                "Redis state %s still unreachable after %.0f s; %d writes waiting locally",
                self.url,
                now - (self._down_since or now),
                self.pending_writes,
            )

    def _drain(self, *, recovering: bool) -> None:
        """Send the outbox in order; on recovery, declare Redis back once it is empty."""
        replayed = 0
        while True:
            with self._cond:
                # Back once every ban, setting and mark written meanwhile is in Redis; events
                # keep flowing as usual (under load the outbox may never be quite empty).
                if recovering and self._down_since is not None and self._state_ops == 0:
                    took = time.monotonic() - self._down_since
                    self._down_since = None
                    self._cond.notify_all()
                    log.warning(
                        "Redis state %s reachable again after %.1f s; %d writes replayed",
                        self.url,
                        took,
                        replayed,
                    )
                if not self._outbox:
                    self._cond.notify_all()
                    return
                batch = self._take_batch()
                self._inflight = batch  # the front of the outbox; only this thread pops it
            try:
                with self._slot():
                    self._send(batch)
            except UNAVAILABLE as exc:
                with self._cond:
                    self._inflight = []
                    self._trim()
                self._trip(exc)
                return
            except rx.RedisError as exc:
                # A write Redis refuses (not an outage) would block the outbox forever.
                log.error(
                    "Redis state %s: dropping a %s write Redis refused: %s", self.url, batch[0].kind, exc
                )
            with self._cond:
                self._inflight = []
                for _ in batch:
                    op = self._outbox.popleft()
                    if op.kind != "event":
                        self._state_ops -= 1
                self._done += len(batch)
                if recovering:
                    replayed += len(batch)
                    self.replayed_writes += sum(1 for op in batch if op.kind != "event")
                self._cond.notify_all()

    def _take_batch(self) -> list[_Op]:
        # Lock held. A batch retried keeps its marker and exact size (see record_events.lua).
        first = self._outbox[0]
        if first.kind != "event":
            return [first]
        if first.batch is not None:
            size = int(first.batch.partition("/")[2])
            return [self._outbox[i] for i in range(size)]
        batch: list[_Op] = []
        for op in self._outbox:
            if op.kind != "event" or len(batch) >= BATCH_SIZE:
                break
            batch.append(op)
        mark = f"{uuid.uuid4().hex}/{len(batch)}"
        for op in batch:
            op.batch = mark
        return batch

    def _send(self, batch: list[_Op]) -> None:
        op = batch[0]
        if op.kind == "event":
            self._send_events(batch)
        elif op.kind == "add_ban":
            self._send_add_ban(op.args[0], replay=True)
        elif op.kind == "remove_ban":
            self._send_remove_ban(*op.args)
        elif op.kind == "set_setting":
            self._replay_setting(*op.args)
        elif op.kind == "spend_once":
            self._send_spend(*op.args)
        elif op.kind == "audit":
            self._send_audit(*op.args)
        else:  # pragma: no cover - a bug
            raise AssertionError(op.kind)

    def _prune_due(self) -> bool:
        return (
            self.retention_seconds is not None and time.monotonic() - self._last_prune >= AUTO_PRUNE_INTERVAL
        )

    def _prune_wait(self) -> float | None:
        if self.retention_seconds is None:
            return None
        return max(0.0, AUTO_PRUNE_INTERVAL - (time.monotonic() - self._last_prune))

    def _maybe_auto_prune(self) -> None:
        if not self._prune_due() or self._down_since is not None or self.retention_seconds is None:
            return
        self._last_prune = time.monotonic()
        try:
            self.prune_events(self._clock() - self.retention_seconds)
        except (StateError, rx.RedisError, OSError) as exc:
            log.warning("Redis state %s: automatic event pruning failed: %s", self.url, exc)

    # -- lifecycle ------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Wait until what was queued so far is in Redis. Returns early while Redis is
        unreachable (the writes stay queued and are replayed when it is back)."""
        if self._closed:
            return
        with self._cond:
            target = self._enqueued
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: self._done >= target or self._down_since is not None or self._closed,
                timeout=timeout if timeout is not None else 10.0,
            )

    def close(self) -> None:
        """Send what is queued (for up to 2 s), stop the writer, close the connections."""
        with self._cond:
            if self._closed or self._closing:
                return
        self.flush(CLOSE_FLUSH_SECONDS)
        with self._cond:
            if self._down_since is not None and self._outbox:
                # Redis may be restarting just now: give the writer's probe a chance.
                self._cond.wait_for(
                    lambda: self._down_since is None and not self._outbox, timeout=CLOSE_FLUSH_SECONDS
                )
            self._closing = True
            self._cond.notify_all()
        self._writer.join(CLOSE_FLUSH_SECONDS)
        with self._cond:
            self._closed = True
            lost = len(self._outbox)
            events = sum(1 for op in self._outbox if op.kind == "event")
            audits = sum(1 for op in self._outbox if op.kind == "audit")
            self.dropped_events += events
            self.dropped_writes += lost - events
            self._outbox.clear()
            self._cond.notify_all()
        if lost:
            log.error(
                "Redis state %s closed while unreachable: %d writes (%d of them events, %d audit "
                "entries) not stored",
                self.url,
                lost,
                events,
                audits,
            )
        for client in (self._client_obj, self._bulk_obj):
            if client is None:
                continue
            try:
                client.close()
            except Exception:  # closing a broken client must not hide the shutdown
                log.debug("closing the Redis client failed", exc_info=True)
        atexit.unregister(self.close)

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StateClosedError(f"state store {self.url} is closed")

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"


def _user_json(user: User) -> str:
    return json.dumps(
        {
            "name": codec.text(user.name),
            "role": user.role,
            "password_hash": user.password_hash,
            "created": user.created,
            "password_changed": user.password_changed,
        }
    )


def _user_from_json(raw: str) -> User:
    d = json.loads(raw)
    return User(d["name"], d["role"], d["password_hash"], float(d["created"]), float(d["password_changed"]))


def _token_json(token: ApiToken) -> str:
    return json.dumps(
        {
            "digest": token.digest,
            "user": codec.text(token.user),
            "created": token.created,
            "expires": token.expires,
            "label": codec.text(token.label),
        }
    )


def _token_from_json(raw: str) -> ApiToken:
    d = json.loads(raw)
    expires = None if d.get("expires") is None else float(d["expires"])
    return ApiToken(d["digest"], d["user"], float(d["created"]), expires, d.get("label", ""))
