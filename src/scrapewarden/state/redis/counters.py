"""Per-actor counters shared by every instance, on Redis (or Valkey), one call per actor.

The engine decides in three steps (:meth:`scrapewarden.core.engine.Engine.begin`, ``observe``,
``finish``). This adapter is the shared ``observe``: for each actor of a request it runs
``lua/observe.lua`` once — all of that actor's keys under one hash tag, so the same script runs
on Redis Cluster — and the actors of one request concurrently, at most ``concurrency`` calls in
flight per process. The answers are :class:`CountsSnapshot` values the engine judges exactly as
it judges its own counters.

Keys name actors by a keyed pseudonym (never a raw address or account id):
``<prefix>:c:{<kind>:<pseudonym>}:h`` (scalars; the prefix is the state URL's), ``…:o`` (order
tracker), ``…:ms``/``…:mh``, ``…:hs``/``…:hh``, ``…:ds``/``…:dh`` (distinct records per minute,
hour, day: set, then HLL).
Everything expires two days after the actor's last request.

Failure: every call has a deadline (``timeout``, a few milliseconds by default). If Redis does
not answer in time, or fails, :meth:`observe` returns None and the caller counts locally; the
store is marked degraded (``degraded_since``, ``failures``) and a warning is logged at most
every few seconds. Local counts never flow back into Redis, so when it returns the shared
budgets resume from what Redis last knew: no burst of false blocks (a scraper gains at most the
requests made during the outage).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from ...core.counters import EXACT_LIMIT, TRAP_MEMORY_SECONDS, CountsSnapshot, Observation

log = logging.getLogger("scrapewarden")

TTL_SECONDS = 2 * 86400
"""How long an actor's counters outlive its last request (the day window and the one before)."""
WARN_EVERY = 5.0


def observe_script() -> str:
    return resources.files("scrapewarden.state.redis").joinpath("lua/observe.lua").read_text(encoding="utf-8")


class RedisCounters:
    """Shared counters: ``await observe(actors, observation)`` → one snapshot per actor, or None."""

    def __init__(
        self,
        client: Any,
        *,
        name: Callable[[str, str], str],
        timeout: float = 0.005,
        concurrency: int = 64,
        prefix: str = "sw",
    ) -> None:
        """``client``: a ``redis.asyncio.Redis`` or ``RedisCluster``. ``name(kind, key)``: the
        keyed pseudonym an actor is stored under."""
        self.client = client
        self.name = name
        self.timeout = timeout
        self.prefix = prefix
        self._script = client.register_script(observe_script())
        self._slots = asyncio.Semaphore(concurrency)
        self.calls = 0
        self.failures = 0
        self.degraded_since: float | None = None
        self._warned = 0.0

    def _keys(self, kind: str, key: str) -> list[str]:
        tag = f"{self.prefix}:c:{{{kind}:{self.name(kind, key)}}}"
        return [tag + suffix for suffix in (":h", ":o", ":ms", ":mh", ":hs", ":hh", ":ds", ":dh")]

    async def _one(self, kind: str, key: str, obs: Observation) -> CountsSnapshot:
        args = (
            repr(obs.now),
            "1" if obs.asset else "0",
            "1" if obs.page else "0",
            "1" if obs.trap else "0",
            "1" if kind == "ip" else "0",
            "1" if kind == "account" else "0",
            str(obs.record) if obs.record_kind else "",
            obs.record_kind,
            obs.record_id,
            EXACT_LIMIT,
            TTL_SECONDS,
            TRAP_MEMORY_SECONDS,
        )
        async with self._slots:
            self.calls += 1
            raw = await self._script(keys=self._keys(kind, key), args=args)
        v = [float(x) for x in raw]
        return CountsSnapshot(v[0], int(v[1]), int(v[2]), v[3], v[4], v[5], v[6], int(v[7]), v[8], v[9])

    async def observe(
        self, actors: Sequence[tuple[str, str]], obs: Observation
    ) -> list[CountsSnapshot] | None:
        """Count ``obs`` for every actor; None when Redis did not answer within the deadline."""
        try:
            async with asyncio.timeout(self.timeout):
                counted = await asyncio.gather(*(self._one(kind, key, obs) for kind, key in actors))
        except Exception as exc:  # timeout, connection refused, cluster moved...: count locally
            self._failed(exc)
            return None
        if self.degraded_since is not None:
            log.warning(
                "scrapewarden: shared counters are back after %.1f s", time.monotonic() - self.degraded_since
            )
            self.degraded_since = None
        return list(counted)

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        if self.degraded_since is None:
            self.degraded_since = now
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning(
                "scrapewarden: shared counters unavailable (%s); deciding on local counters",
                type(exc).__name__,
            )
