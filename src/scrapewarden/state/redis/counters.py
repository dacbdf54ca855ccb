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

from redis.exceptions import NoScriptError

from ...core.counters import EXACT_LIMIT, TRAP_MEMORY_SECONDS, CountsSnapshot, Observation
from .resp import NoScript, RespConnection, RespError, pack

log = logging.getLogger("scrapewarden")

TTL_SECONDS = 2 * 86400
"""How long an actor's counters outlive its last request (the day window and the one before)."""
WARN_EVERY = 5.0


def observe_script() -> str:
    """The script, with the constants it shares with the in-process counters filled in."""
    text = resources.files("scrapewarden.state.redis").joinpath("lua/observe.lua").read_text(encoding="utf-8")
    for name, value in (
        ("EXACT_LIMIT", EXACT_LIMIT),
        ("TTL_SECONDS", TTL_SECONDS),
        ("TRAP_MEMORY_SECONDS", TRAP_MEMORY_SECONDS),
    ):
        text = text.replace(f"@{name}@", repr(value))
    return text


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
        fast: RespConnection | None = None,
    ) -> None:
        """``client``: a ``redis.asyncio.Redis`` or ``RedisCluster``. ``name(kind, key)``: the
        keyed pseudonym an actor is stored under."""
        self.client = client
        self.name = name
        self.timeout = timeout
        self.prefix = prefix
        self._script = client.register_script(observe_script())
        self._slots = asyncio.Semaphore(concurrency)
        self._cluster = type(client).__name__ == "RedisCluster"
        self._fast = fast
        """A lean connection for the batches (single server); redis-py's pipeline otherwise."""
        self._batch: list[tuple[Sequence[tuple[str, str]], Observation, asyncio.Future[list[Any]]]] = []
        self._flush_scheduled = False
        self._sending: set[asyncio.Future[None]] = set()
        self.calls = 0
        self.failures = 0
        self.degraded_since: float | None = None
        self._warned = 0.0

    def _keys(self, kind: str, key: str) -> list[str]:
        tag = f"{self.prefix}:c:{{{kind}:{self.name(kind, key)}}}"
        return [tag + suffix for suffix in (":h", ":o", ":ms", ":mh", ":hs", ":hh", ":ds", ":dh")]

    def _args(self, kind: str, obs: Observation) -> tuple[str, str]:
        # Two arguments, not twelve: redis-py encodes each one separately, which costs more than
        # the round trip on loopback.
        flags = f"{obs.asset:d}{obs.page:d}{obs.trap:d}{kind == 'ip':d}{kind == 'account':d}"
        if obs.record_kind:
            return f"{obs.now!r} {flags} {obs.record} {obs.record_kind}", obs.record_id
        return f"{obs.now!r} {flags} -", ""

    async def _one(self, kind: str, key: str, obs: Observation) -> CountsSnapshot:
        async with self._slots:
            self.calls += 1
            raw = await self._script(keys=self._keys(kind, key), args=self._args(kind, obs))
        return _snapshot(raw)

    async def _pipelined(self, actors: Sequence[tuple[str, str]], obs: Observation) -> list[CountsSnapshot]:
        """This request's actors join the batch of the current event-loop tick: every request
        in flight shares one pipeline, one round trip (single server)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Any]] = loop.create_future()
        self._batch.append((actors, obs, done))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return [_snapshot(r) for r in await done]

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        if batch:
            task = asyncio.ensure_future(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(
        self, batch: list[tuple[Sequence[tuple[str, str]], Observation, asyncio.Future[list[Any]]]]
    ) -> None:
        async with self._slots:
            self.calls += 1
            try:
                try:
                    raw = await self._evalsha_all(batch)
                except NoScriptError:  # a restarted or flushed server: load the script, again
                    await self.client.script_load(self._script.script)
                    raw = await self._evalsha_all(batch)
            except Exception as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                return
        at = 0
        for actors, _, done in batch:
            if not done.done():  # a caller past its deadline has gone already
                done.set_result(raw[at : at + len(actors)])
            at += len(actors)

    async def _evalsha_fast(
        self, fast: RespConnection, batch: list[tuple[Sequence[tuple[str, str]], Observation, Any]]
    ) -> list[Any]:
        sha = self._script.sha
        commands = [
            pack("EVALSHA", sha, "8", *self._keys(kind, key), *self._args(kind, obs))
            for actors, obs, _ in batch
            for kind, key in actors
        ]
        replies = await fast.batch(commands)
        if any(isinstance(r, NoScript) for r in replies):
            # A restarted or flushed server: load the script once, then send the batch again.
            # (The calls that did not fail counted; only NOSCRIPT ones are resent.)
            await fast.batch([pack("SCRIPT", "LOAD", self._script.script)])
            again = [c for c, r in zip(commands, replies, strict=True) if isinstance(r, NoScript)]
            redone = iter(await fast.batch(again))
            replies = [next(redone) if isinstance(r, NoScript) else r for r in replies]
        for reply in replies:
            if isinstance(reply, RespError):
                raise reply
        return replies

    async def _evalsha_all(
        self, batch: list[tuple[Sequence[tuple[str, str]], Observation, asyncio.Future[list[Any]]]]
    ) -> list[Any]:
        if self._fast is not None:
            return await self._evalsha_fast(self._fast, batch)
        # EVALSHA straight into the pipeline: redis-py's Script objects would make every
        # pipeline ask SCRIPT EXISTS first, a second round trip.
        sha = self._script.sha
        pipe = self.client.pipeline(transaction=False)
        for actors, obs, _ in batch:
            for kind, key in actors:
                keys = self._keys(kind, key)
                pipe.evalsha(sha, len(keys), *keys, *self._args(kind, obs))
        result: list[Any] = await pipe.execute()
        return result

    async def observe(
        self, actors: Sequence[tuple[str, str]], obs: Observation
    ) -> list[CountsSnapshot] | None:
        """Count ``obs`` for every actor; None when Redis did not answer within the deadline.
        On a single server, all requests in flight in one event-loop tick share one pipelined
        round trip (at most one per decision); on a Cluster (whose pipelines refuse
        EVALSHA) one call per actor, concurrently — each actor's keys live on one node."""
        try:
            async with asyncio.timeout(self.timeout):
                if self._cluster:
                    counted = await asyncio.gather(*(self._one(kind, key, obs) for kind, key in actors))
                else:
                    counted = await self._pipelined(actors, obs)
        except Exception as exc:  # timeout, connection refused, cluster moved...: count locally
            self._failed(exc)
            return None
        if self.degraded_since is not None:
            if self._warned >= self.degraded_since:  # say it is over only if we said it began
                log.warning(
                    "scrapewarden: shared counters are back after %.1f s",
                    time.monotonic() - self.degraded_since,
                )
            self.degraded_since = None
        return list(counted)

    async def aclose(self) -> None:
        """Close the connections (on the loop that made them)."""
        if self._fast is not None:
            self._fast.close()
        await self.client.aclose()

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


def _snapshot(raw: Sequence[Any]) -> CountsSnapshot:
    v = [float(x) for x in raw]
    return CountsSnapshot(v[0], int(v[1]), int(v[2]), v[3], v[4], v[5], v[6], int(v[7]), v[8], v[9])
