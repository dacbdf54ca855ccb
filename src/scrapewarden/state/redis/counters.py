"""Per-actor counters shared by every instance, on Redis (or Valkey), one call per actor.

The engine decides in three steps (:meth:`scrapewarden.core.engine.Engine.begin`, ``observe``,
``finish``). This adapter is the shared ``observe``: for each actor of a request it runs
``lua/observe.lua`` once — all of that actor's keys under one hash tag, so the same script runs
on Redis Cluster — and the actors of one request concurrently, at most ``concurrency`` calls in
flight per process. The answers are :class:`CountsSnapshot` values the engine judges exactly as
it judges its own counters.

Keys name actors by a keyed pseudonym (never a raw address or account id):
``<prefix>:c:{<kind>:<pseudonym>}:s`` (the scalars, one MessagePack string; the prefix is the
state URL's), ``…:ms``/``…:mh``, ``…:hs``/``…:hh``, ``…:ds``/``…:dh`` (distinct records per
minute, hour, day: set, then HLL).
Everything expires two days after the actor's last request.

Failure: every call has a deadline (``timeout``, 20 ms by default). If Redis does not answer in
time, or fails, :meth:`observe` returns None and the caller counts locally; the counters are
marked degraded (``degraded_since``, ``failures``) and a warning is logged at most every few
seconds. After two failed tries in a row, until the next try (0.1 s later, doubling up to 2 s
while it keeps failing) requests are counted locally at once (``skipped``), so a frozen Redis
makes one request per try wait the deadline, not every request. Local counts never flow back
into Redis, so when it returns the shared budgets resume from what Redis last knew: no burst of
false blocks (a scraper gains at most the requests made during the outage).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from redis.crc import key_slot
from redis.exceptions import NoScriptError

from ...core.counters import EXACT_LIMIT, TRAP_MEMORY_SECONDS, CountsSnapshot, Observation
from .resp import RespConnection, RespError

log = logging.getLogger("scrapewarden")

TTL_SECONDS = 2 * 86400
"""How long an actor's counters outlive its last request (the day window and the one before)."""
WARN_EVERY = 5.0
RETRY_FIRST = 0.1
RETRY_MAX = 2.0
"""After a failure, Redis is tried again after RETRY_FIRST seconds, doubling up to RETRY_MAX."""
SUFFIXES = (":s", ":ms", ":mh", ":hs", ":hh", ":ds", ":dh")
"""An actor's keys after its hash tag: scalars; distinct records per minute, hour, day (set, HLL)."""
KEY_CACHE_SIZE = 50_000
BATCH_REQUESTS = 16
"""Requests per batch before it is sent without waiting for the end of the loop tick. Measured
(``bench state``, 32 in flight): unbounded batches leave Redis idle while this process
prepares the next one; 16 overlaps the two best (8 and 32 were slower)."""
LETTERS = {"ip": "i", "account": "a"}
"""How the script is told an actor's kind: addresses remember traps, accounts count per minute."""


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
        node: Callable[[str, int], RespConnection] | None = None,
    ) -> None:
        """``client``: a ``redis.asyncio.Redis`` or ``RedisCluster``. ``name(kind, key)``: the
        keyed pseudonym an actor is stored under. ``fast``: a lean connection for the batches
        on a single server; ``node(host, port)``: one to a Cluster node (Cluster); redis-py's
        pipeline (single) or one redis-py call per actor (Cluster) otherwise."""
        self.client = client
        self.name = name
        self.timeout = timeout
        self.prefix = prefix
        self._script = client.register_script(observe_script())
        self._sha = self._script.sha.encode()
        self._slots = asyncio.Semaphore(concurrency)
        self._cluster = type(client).__name__ == "RedisCluster"
        self._fast = fast
        self._node = node
        self._nodes: dict[tuple[str, int], RespConnection] = {}
        self._refreshing = False
        self._packed_keys: dict[tuple[str, str], tuple[bytes, int]] = {}
        self._batch: list[tuple[Sequence[tuple[str, str]], Observation, asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._sending: set[asyncio.Future[None]] = set()
        self.calls = 0
        self.failures = 0
        self.degraded_since: float | None = None
        self.skipped = 0
        """Requests decided locally without asking Redis, as it had just failed."""
        self._backoff = 0.0
        self._retry_at = 0.0
        self._tries_failed = 0
        self._last_failure = 0.0
        self._warned = 0.0

    def _keys(self, kind: str, key: str) -> list[str]:
        tag = f"{self.prefix}:c:{{{kind}:{self.name(kind, key)}}}"
        return [tag + suffix for suffix in SUFFIXES]

    @staticmethod
    def _args(obs: Observation, kinds: str) -> tuple[str, str, str]:
        # Three arguments, not a dozen: each one costs its own encoding on this side.
        flags = f"{obs.asset:d}{obs.page:d}{obs.trap:d}"
        if obs.record_kind:
            return f"{obs.now!r} {flags} {obs.record} {obs.record_kind}", obs.record_id, kinds
        return f"{obs.now!r} {flags} -", "", kinds

    def _packed(self, kind: str, key: str) -> tuple[bytes, int]:
        """An actor's seven keys as RESP bulk strings, and their Cluster slot. Kept (the
        pseudonym is an HMAC) in a table cleared when full: people and scrapers alike come back
        many times a minute."""
        packed = self._packed_keys.get((kind, key))
        if packed is None:
            if len(self._packed_keys) >= KEY_CACHE_SIZE:
                self._packed_keys.clear()
            keys = self._keys(kind, key)
            packed = self._packed_keys[(kind, key)] = (
                b"".join(b"$%d\r\n%s\r\n" % (len(k), k) for k in (s.encode() for s in keys)),
                key_slot(keys[0].encode()),
            )
        return packed

    def _command(self, actors: Sequence[tuple[str, str]], obs: Observation) -> bytes:
        """One EVALSHA for all of a request's actors, as RESP bytes written directly (the
        generic ``pack`` costs more than the engine's whole decision)."""
        first, second, kinds = self._args(obs, "".join([LETTERS.get(kind, "o") for kind, _ in actors]))
        a = first.encode()
        b = second.encode("utf-8", "surrogateescape")
        n = len(actors) * len(SUFFIXES)
        keys = b"".join([self._packed(kind, key)[0] for kind, key in actors])
        sha = self._sha
        return (
            b"*%d\r\n$7\r\nEVALSHA\r\n$%d\r\n%s\r\n$%d\r\n%d\r\n%s$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
            % (
                n + 6,
                len(sha),
                sha,
                len(str(n)),
                n,
                keys,
                len(a),
                a,
                len(b),
                b,
                len(kinds),
                kinds.encode(),
            )
        )

    async def _one(self, kind: str, key: str, obs: Observation) -> CountsSnapshot:
        """One actor's call (Cluster: each actor's keys live on the node of its hash tag)."""
        async with self._slots:
            self.calls += 1
            raw = await self._script(keys=self._keys(kind, key), args=self._args(obs, LETTERS.get(kind, "o")))
        return _snapshot(raw)

    async def _pipelined(self, actors: Sequence[tuple[str, str]], obs: Observation) -> list[CountsSnapshot]:
        """This request joins the batch of the current event-loop tick: the requests in flight
        share one pipelined round trip (single server), each one call for all its actors.
        A batch that grows past ``BATCH_REQUESTS`` goes at once, so Redis works on it while
        this process prepares the rest (two cores, both busy)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._batch.append((actors, obs, done))
        if len(self._batch) >= BATCH_REQUESTS:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return _snapshots(await done)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        if batch:
            task = asyncio.ensure_future(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(
        self, batch: list[tuple[Sequence[tuple[str, str]], Observation, asyncio.Future[Any]]]
    ) -> None:
        # The deadline is the batch's, one timer for all its requests (a timer per request cost
        # more than a tenth of the whole decision).
        try:
            async with asyncio.timeout(self.timeout), self._slots:
                self.calls += 1
                try:
                    replies = await self._evalsha_all(batch)
                except NoScriptError:  # a restarted or flushed server: load the script, again
                    await self.client.script_load(self._script.script)
                    replies = await self._evalsha_all(batch)
        except Exception as exc:
            for _, _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for (_, _, done), reply in zip(batch, replies, strict=True):
            if not done.done():  # a caller past its deadline has gone already
                done.set_result(reply)

    async def _evalsha_nodes(
        self,
        node: Callable[[str, int], RespConnection],
        batch: list[tuple[Sequence[tuple[str, str]], Observation, Any]],
    ) -> list[Any]:
        """Cluster, lean: one call per actor (its keys live on its hash tag's node), the calls
        of the whole batch grouped per node, one pipelined round trip per node, concurrently.
        Answers one string per request, a line per actor, like the single-server call."""
        client = self.client
        manager = client.nodes_manager
        if not manager.slots_cache:
            await client.initialize()
        per_node: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
        lines: list[list[Any]] = []
        at = 0
        for actors, obs, _ in batch:
            lines.append([b""] * len(actors))
            for kind, key in actors:
                command, slot = self._command_for(kind, key, obs)
                primary = manager.get_node_from_slot(slot)
                per_node.setdefault((primary.host, primary.port), []).append((at, command))
                at += 1
        where = [(i, j) for i, (actors, _, _) in enumerate(batch) for j in range(len(actors))]

        async def one_node(address: tuple[str, int], items: list[tuple[int, bytes]]) -> None:
            connection = self._nodes.get(address)
            if connection is None:
                connection = self._nodes[address] = node(*address)
            replies = await self._lean(connection, [command for _, command in items])
            for (index, _), reply in zip(items, replies, strict=True):
                if isinstance(reply, RespError):
                    if str(reply).startswith(("MOVED", "ASK")) and not self._refreshing:
                        # Slots moved (resharding, failover): learn the new map for next time.
                        task = asyncio.ensure_future(manager.initialize())
                        self._sending.add(task)
                        task.add_done_callback(self._refreshed)
                        self._refreshing = True
                    raise reply
                i, j = where[index]
                lines[i][j] = reply

        self.calls += len(per_node) - 1  # a round trip per node (``_send`` counted one)
        await asyncio.gather(*(one_node(address, items) for address, items in per_node.items()))
        return [b"\n".join(request_lines) for request_lines in lines]

    def _refreshed(self, task: asyncio.Future[Any]) -> None:
        self._sending.discard(task)
        self._refreshing = False
        if not task.cancelled() and task.exception() is not None:
            log.debug("cluster slots refresh failed: %r", task.exception())

    def _command_for(self, kind: str, key: str, obs: Observation) -> tuple[bytes, int]:
        """One actor's EVALSHA and its slot (Cluster)."""
        _, slot = self._packed(kind, key)
        return self._command(((kind, key),), obs), slot

    async def _lean(self, connection: RespConnection, commands: list[bytes]) -> list[Any]:
        return await connection.scripts(commands, [self._script.script] * len(commands))

    async def _evalsha_fast(
        self, fast: RespConnection, batch: list[tuple[Sequence[tuple[str, str]], Observation, Any]]
    ) -> list[Any]:
        command = self._command
        replies = await self._lean(fast, [command(actors, obs) for actors, obs, _ in batch])
        for reply in replies:
            if isinstance(reply, RespError):
                raise reply
        return replies

    async def _evalsha_all(
        self, batch: list[tuple[Sequence[tuple[str, str]], Observation, asyncio.Future[Any]]]
    ) -> list[Any]:
        if self._fast is not None:
            return await self._evalsha_fast(self._fast, batch)
        if self._node is not None:
            return await self._evalsha_nodes(self._node, batch)
        # EVALSHA straight into the pipeline: redis-py's Script objects would make every
        # pipeline ask SCRIPT EXISTS first, a second round trip.
        sha = self._script.sha
        pipe = self.client.pipeline(transaction=False)
        for actors, obs, _ in batch:
            keys = [k for kind, key in actors for k in self._keys(kind, key)]
            pipe.evalsha(
                sha, len(keys), *keys, *self._args(obs, "".join(LETTERS.get(k, "o") for k, _ in actors))
            )
        result: list[Any] = await pipe.execute()
        return result

    async def observe(
        self, actors: Sequence[tuple[str, str]], obs: Observation
    ) -> list[CountsSnapshot] | None:
        """Count ``obs`` for every actor; None when Redis did not answer within the deadline.
        The requests in flight in one event-loop tick share one pipelined round trip per
        server (at most one per decision): on a single server one call per request; on a
        Cluster one call per actor (each actor's keys live on one node), grouped per node.
        (Without the lean connections, a Cluster gets one redis-py call per actor instead:
        redis-py's cluster pipelines refuse EVALSHA.)"""
        started = time.monotonic()
        if self.degraded_since is not None and started < self._retry_at:
            self.skipped += 1  # Redis failed a moment ago: don't make this request wait too
            return None
        try:
            if self._cluster and self._node is None:
                async with asyncio.timeout(self.timeout):
                    counted = await asyncio.gather(*(self._one(kind, key, obs) for kind, key in actors))
            else:
                counted = await self._pipelined(actors, obs)  # within the batch's deadline
        except Exception as exc:  # timeout, connection refused, cluster moved...: count locally
            self._failed(exc, started)
            return None
        if self.degraded_since is not None:
            if self._warned >= self.degraded_since:  # say it is over only if we said it began
                log.warning(
                    "scrapewarden: shared counters are back after %.1f s",
                    time.monotonic() - self.degraded_since,
                )
            self.degraded_since = None
            self._backoff = 0.0
            self._tries_failed = 0
        return list(counted)

    async def aclose(self) -> None:
        """Close the connections (on the loop that made them)."""
        if self._fast is not None:
            self._fast.close()
        for connection in self._nodes.values():
            connection.close()
        await self.client.aclose()

    def _failed(self, exc: BaseException, started: float) -> None:
        self.failures += 1
        now = time.monotonic()
        if self.degraded_since is None:
            self.degraded_since = now
        # A request that began after the last failure is a new try; the others were in flight
        # with it and fail with it (a batch, or batches behind it), saying nothing new. One
        # failed try may be a moment's stall (a garbage collection, a busy core). A second in a
        # row means Redis is away or overloaded: until the next try, requests are decided
        # locally at once, so it costs one request per try the deadline, not every request.
        if started >= self._last_failure:
            self._tries_failed += 1
            if self._tries_failed >= 2 and now >= self._retry_at:
                self._backoff = min(RETRY_MAX, self._backoff * 2 or RETRY_FIRST)
                self._retry_at = now + self._backoff
        self._last_failure = now
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning(
                "scrapewarden: shared counters unavailable (%s); deciding on local counters",
                type(exc).__name__,
            )


def _snapshot(line: bytes | str) -> CountsSnapshot:
    v = line.split()
    return CountsSnapshot(
        float(v[0]),
        int(v[1]),
        int(v[2]),
        float(v[3]),
        float(v[4]),
        float(v[5]),
        float(v[6]),
        int(v[7]),
        float(v[8]),
        float(v[9]),
    )


def _snapshots(reply: bytes | str) -> list[CountsSnapshot]:
    """The script's answer for one request: a line of counts per actor."""
    return [_snapshot(line) for line in reply.splitlines()]
