"""In-process counters: request rates, distinct-record budgets and order trackers per actor.

Pure data structures: every method takes ``now`` (epoch seconds) from the caller. The engine
keeps one :class:`ActorTable` per actor kind (ip, network, session, account, fingerprint).

Windows are *sliding approximations*: a fixed current window plus the previous window's total,
weighted by how much of it still overlaps the sliding window (the approach nginx and Cloudflare
document for rate limits). For distinct counts the previous window's count is weighted the same
way; this over-counts slightly when the same records recur, which errs on the side of caution.

Memory per actor is bounded: distinct sets are exact up to :data:`EXACT_LIMIT` items, then become
a HyperLogLog of 2**10 one-byte registers (about 3 % standard error). Worst case per actor, with
minute, hour and day windows all past the exact limit: about 3.5 KiB; an actor that never views a
protected record costs about 200 bytes. :class:`ActorTable` bounds the number of actors.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from math import log
from typing import Protocol

EXACT_LIMIT = 48
"""Distinct items kept exactly before switching to a HyperLogLog."""

_HLL_P = 10
_HLL_M = 1 << _HLL_P
_HLL_MASK = _HLL_M - 1
_HLL_ALPHA = 0.7213 / (1 + 1.079 / _HLL_M)
_HASH_BITS = 64
_MASK64 = (1 << _HASH_BITS) - 1
# 2**-r for every possible register value, so updates never call pow().
_INV_POW = [2.0**-r for r in range(_HASH_BITS - _HLL_P + 2)]


class HyperLogLog:
    """A HyperLogLog counter whose estimate is O(1): the harmonic sum is kept up to date."""

    __slots__ = ("_registers", "_sum", "_zeros")

    def __init__(self) -> None:
        self._registers = bytearray(_HLL_M)
        self._sum = float(_HLL_M)  # every register at 0 contributes 2**0
        self._zeros = _HLL_M

    def add(self, h: int) -> None:
        """Add a 64-bit hash."""
        h &= _MASK64
        idx = h & _HLL_MASK
        w = h >> _HLL_P
        rank = (_HASH_BITS - _HLL_P) - w.bit_length() + 1
        old = self._registers[idx]
        if rank > old:
            self._registers[idx] = rank
            self._sum += _INV_POW[rank] - _INV_POW[old]
            if old == 0:
                self._zeros -= 1

    def count(self) -> float:
        estimate = _HLL_ALPHA * _HLL_M * _HLL_M / self._sum
        if estimate <= 2.5 * _HLL_M and self._zeros:
            return _HLL_M * log(_HLL_M / self._zeros)
        return estimate


class SlidingCount:
    """Events per ``period`` seconds, sliding approximation over two fixed windows."""

    __slots__ = ("_cur", "_period", "_prev", "_window")

    def __init__(self, period: float) -> None:
        self._period = period
        self._window = -1
        self._cur = 0
        self._prev = 0

    def add(self, now: float, amount: int = 1) -> float:
        """Count an event and return the sliding estimate including it."""
        self._roll(now)
        self._cur += amount
        return self._estimate(now)

    def value(self, now: float) -> float:
        self._roll(now)
        return self._estimate(now)

    def _roll(self, now: float) -> None:
        window = int(now // self._period)
        if window != self._window:
            self._prev = self._cur if window == self._window + 1 else 0
            self._cur = 0
            self._window = window

    def _estimate(self, now: float) -> float:
        if not self._prev:
            return float(self._cur)
        overlap = 1.0 - (now % self._period) / self._period
        return self._cur + self._prev * overlap

    def seconds_to_window_end(self, now: float) -> float:
        return self._period - (now % self._period)


class DistinctCount:
    """Distinct items per ``period`` seconds: exact set while small, then HyperLogLog."""

    __slots__ = ("_cur", "_period", "_prev", "_window")

    def __init__(self, period: float) -> None:
        self._period = period
        self._window = -1
        self._cur: set[int] | HyperLogLog = set()
        self._prev = 0.0

    def add(self, h: int, now: float) -> float:
        """Add an item's 64-bit hash and return the sliding distinct estimate."""
        window = int(now // self._period)
        if window != self._window:
            self._prev = self._count() if window == self._window + 1 else 0.0
            self._cur = set()
            self._window = window
        cur = self._cur
        if isinstance(cur, set):
            cur.add(h)
            count: float = len(cur)
            if count > EXACT_LIMIT:
                sketch = HyperLogLog()
                for item in cur:
                    sketch.add(item)
                self._cur = sketch
        else:
            cur.add(h)
            count = cur.count()
        if not self._prev:
            return float(count)
        return count + self._prev * (1.0 - (now % self._period) / self._period)

    def contains_exactly(self, h: int, now: float) -> bool:
        """True when ``h`` is known to be in the current window (exact mode only)."""
        cur = self._cur
        return int(now // self._period) == self._window and isinstance(cur, set) and h in cur

    def _count(self) -> float:
        cur = self._cur
        return float(len(cur)) if isinstance(cur, set) else cur.count()


# Pair classes for OrderTracker: how one record id relates to the previous one of the same kind.
_STEP = 1  # numeric ids within a few of each other: sequential enumeration
_ASC = 2  # greater than the previous one: a sorted sweep
_OTHER = 0


class OrderTracker:
    """Tracks the order of the last ``size`` record ids an actor asked for, in O(1) per id.

    Keeps running counts of consecutive pairs that step by a small amount (``/users/41`` then
    ``/users/42``) and pairs in ascending order (``aa``, ``ab``...); people browsing a social
    network open profiles in no particular order, so both fractions hover near chance for them.
    """

    __slots__ = ("_asc", "_last_id", "_last_kind", "_last_num", "_pairs", "_steps")

    SIZE = 24
    MAX_STEP = 8

    def __init__(self) -> None:
        self._pairs: deque[int] = deque()
        self._steps = 0
        self._asc = 0
        self._last_kind = ""
        self._last_id = ""
        self._last_num = -1

    def add(self, kind: str, record_id: str) -> None:
        num = int(record_id) if record_id.isdigit() and len(record_id) < 19 else -1
        if kind == self._last_kind and record_id != self._last_id:
            if num >= 0 and self._last_num >= 0:
                delta = num - self._last_num
                cls = _STEP if -self.MAX_STEP <= delta <= self.MAX_STEP else (_ASC if delta > 0 else _OTHER)
                if cls == _STEP and delta > 0:
                    cls = _STEP | _ASC
            else:
                cls = _ASC if record_id > self._last_id else _OTHER
            pairs = self._pairs
            pairs.append(cls)
            self._steps += cls & _STEP
            self._asc += (cls & _ASC) >> 1
            if len(pairs) > self.SIZE:
                old = pairs.popleft()
                self._steps -= old & _STEP
                self._asc -= (old & _ASC) >> 1
        self._last_kind = kind
        self._last_id = record_id
        self._last_num = num

    @property
    def pairs(self) -> int:
        return len(self._pairs)

    @property
    def step_fraction(self) -> float:
        n = len(self._pairs)
        return self._steps / n if n else 0.0

    @property
    def ascending_fraction(self) -> float:
        n = len(self._pairs)
        return self._asc / n if n else 0.0


TRAP_MEMORY_SECONDS = 6 * 3600.0
"""How long an address that requested a trap path stays marked."""


@dataclass(slots=True)
class Observation:
    """What one request adds to the counters of each actor it belongs to.

    The seam between deciding and counting: the engine describes the request once; a counter
    store (this module's tables in process, or a shared store such as Redis, one call per actor)
    applies it and answers with each actor's :class:`ActorCounts`. (Not frozen: one is built
    per request, and a frozen dataclass's constructor costs several times more.)
    """

    now: float
    asset: bool = False
    """A stylesheet, script, image... (the policy's asset paths)."""
    page: bool = False
    """A page a person would look at (a protected record, or an HTML request)."""
    trap: bool = False
    """The path is one of the policy's trap paths."""
    record: int = 0
    """64-bit hash of the protected record asked for; 0 when none."""
    record_kind: str = ""
    record_id: str = ""


class ActorCounts(Protocol):
    """What the detectors read about one actor once a request has been counted. Satisfied by
    :class:`ActorState` itself and by the snapshots a shared counter store returns."""

    @property
    def per_minute(self) -> float: ...

    @property
    def pages(self) -> int: ...

    @property
    def assets(self) -> int: ...

    @property
    def trapped_until(self) -> float: ...

    @property
    def seen_minute(self) -> float: ...

    @property
    def seen_hour(self) -> float: ...

    @property
    def seen_day(self) -> float: ...

    @property
    def order_pairs(self) -> int: ...

    @property
    def order_step(self) -> float: ...

    @property
    def order_ascending(self) -> float: ...


@dataclass(frozen=True, slots=True)
class CountsSnapshot:
    """:class:`ActorCounts` as plain values: what a shared counter store answers for an actor."""

    per_minute: float = 0.0
    pages: int = 0
    assets: int = 0
    trapped_until: float = 0.0
    seen_minute: float = 0.0
    seen_hour: float = 0.0
    seen_day: float = 0.0
    order_pairs: int = 0
    order_step: float = 0.0
    order_ascending: float = 0.0

    @classmethod
    def of(cls, counts: ActorCounts) -> CountsSnapshot:
        return cls(
            counts.per_minute,
            counts.pages,
            counts.assets,
            counts.trapped_until,
            counts.seen_minute,
            counts.seen_hour,
            counts.seen_day,
            counts.order_pairs,
            counts.order_step,
            counts.order_ascending,
        )


class ActorState:
    """Everything the engine counts about one actor (one IP, network, session, account, fingerprint)."""

    __slots__ = (
        "assets",
        "blocks",
        "first_seen",
        "last_seen",
        "order",
        "pages",
        "per_minute",
        "rate",
        "records_day",
        "records_hour",
        "records_minute",
        "seen_day",
        "seen_hour",
        "seen_minute",
        "trapped_until",
    )

    def __init__(self, now: float) -> None:
        self.first_seen = now
        self.last_seen = now
        self.rate = SlidingCount(60.0)
        self.per_minute = 0.0
        """Sliding requests per minute after the latest :meth:`observe`."""
        self.records_minute: DistinctCount | None = None
        self.records_hour: DistinctCount | None = None
        self.records_day: DistinctCount | None = None
        self.order: OrderTracker | None = None
        self.pages = 0
        self.assets = 0
        self.blocks: SlidingCount | None = None
        self.trapped_until = 0.0
        # Sliding distinct-record estimates after the latest add_record().
        self.seen_minute = 0.0
        self.seen_hour = 0.0
        self.seen_day = 0.0

    def observe(self, obs: Observation, kind: str) -> None:
        """Count one request (see :class:`Observation`) for this actor of ``kind``."""
        now = obs.now
        self.per_minute = self.rate.add(now)
        if obs.asset:
            self.assets += 1
        elif obs.page:
            self.pages += 1
        if obs.trap and kind == "ip":
            self.trapped_until = now + TRAP_MEMORY_SECONDS
        if obs.record_kind:
            self.add_record(obs.record, obs.record_kind, obs.record_id, now, kind == "account")

    @property
    def order_pairs(self) -> int:
        return self.order.pairs if self.order is not None else 0

    @property
    def order_step(self) -> float:
        return self.order.step_fraction if self.order is not None else 0.0

    @property
    def order_ascending(self) -> float:
        return self.order.ascending_fraction if self.order is not None else 0.0

    def add_record(self, h: int, kind: str, record_id: str, now: float, per_minute: bool) -> None:
        """Count a protected record view (distinct per hour/day, optionally per minute; order)."""
        hour = self.records_hour
        if hour is None:
            hour = self.records_hour = DistinctCount(3600.0)
            self.records_day = DistinctCount(86400.0)
            self.order = OrderTracker()
        assert self.records_day is not None and self.order is not None
        # Hour windows nest inside day windows, so a record already counted this hour is already
        # counted today: the common "viewed it again" case skips the day update.
        if not hour.contains_exactly(h, now):
            self.seen_hour = hour.add(h, now)
            self.seen_day = self.records_day.add(h, now)
        if per_minute:
            if self.records_minute is None:
                self.records_minute = DistinctCount(60.0)
            self.seen_minute = self.records_minute.add(h, now)
        self.order.add(kind, record_id)


class ActorTable:
    """Actors of one kind with bounded memory, by generations.

    Two dicts: ``current`` and ``previous``. A lookup that misses ``current`` moves the actor up
    from ``previous``. When ``current`` holds ``max_actors // 2`` actors, or a day has passed since
    the last turn, ``previous`` is dropped and ``current`` becomes it. Actors active within the
    last generation always survive; memory stays below ``max_actors`` actors; every operation
    is O(1) (no sweeps on the request path).
    """

    __slots__ = ("_current", "_generation_started", "_half", "_previous", "max_actors")

    GENERATION_SECONDS = 86400.0 + 3600.0  # a day window plus slack, so day budgets survive

    def __init__(self, max_actors: int = 1_000_000) -> None:
        self.max_actors = max_actors
        self._half = max(1, max_actors // 2)
        self._current: dict[str, ActorState] = {}
        self._previous: dict[str, ActorState] = {}
        self._generation_started = -1.0

    def get(self, key: str, now: float) -> ActorState:
        state = self._current.get(key)
        if state is None:
            state = self._previous.pop(key, None)
            if state is None:
                state = ActorState(now)
            if len(self._current) >= self._half or now - self._generation_started > self.GENERATION_SECONDS:
                self._previous = self._current
                self._current = {}
                self._generation_started = now
            self._current[key] = state
        state.last_seen = now
        return state

    def peek(self, key: str) -> ActorState | None:
        return self._current.get(key) or self._previous.get(key)

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)


_SHARED = ""
"""SharedNetworks' mark for a network already used by two addresses (no address is empty)."""


class SharedNetworks:
    """Which networks have been used by more than one address, in bounded memory.

    Most networks carry one client: for them the address's own counters say everything, and
    counting the network as well would double the engine's work for nothing. A network becomes
    an actor of its own from the moment a second address in it shows up (a NAT'd office, or a
    scraper spreading over a /24). Generational like :class:`ActorTable`.
    """

    __slots__ = ("_current", "_half", "_previous")

    def __init__(self, max_networks: int = 1_000_000) -> None:
        self._half = max(1, max_networks // 2)
        self._current: dict[str, str] = {}
        self._previous: dict[str, str] = {}

    def second_address(self, network: str, ip: str) -> bool:
        """Record ``ip`` in ``network``; True once another address has used the network (for
        every address of it from then on, the first one included)."""
        first = self._current.get(network)
        if first is None:
            first = self._previous.pop(network, None)
            if len(self._current) >= self._half:
                self._previous = self._current
                self._current = {}
            self._current[network] = first if first is not None else ip
        if first is None or first == ip:
            return False
        if first:
            self._current[network] = _SHARED  # remembered here, not only by the network's counters
        return True

    def mark_shared(self, network: str) -> None:
        """Count ``network`` as shared from now on (another instance saw a second address)."""
        if network not in self._current:
            self._previous.pop(network, None)
            if len(self._current) >= self._half:
                self._previous = self._current
                self._current = {}
        self._current[network] = _SHARED
