"""The rest of what the engine counts, shared on Redis: offences, shared networks, site assets.

:mod:`.counters` shares each actor's budgets. Three smaller tallies would otherwise stay per
process, and N instances would each give a scraper its own:

* **offences** for automatic bans: each refused request counts against the actors in the
  policy's ban scopes; ``blocks_before_ban`` of them within ``window_seconds`` ban the actor.
  :meth:`SharedTallies.offences` runs ``lua/offence.lua`` for each (key
  ``<prefix>:c:{<kind>:<pseudonym>}:b``, the actor's own hash tag) and answers with the counts,
  which the engine judges (``Engine.offences_counted``). Only refused requests pay for it.
* **shared networks**: a network is counted as an actor once two addresses use it. An address
  whose network is not counted here (``Pending.lone_network``) is noted in
  ``<prefix>:c:{network:<pseudonym>}:a`` (``lua/network_seen.lua``); the answer "two addresses
  have used it" marks the network shared in the engine, from the next request on. Asked once per
  (network, address) pair, and again every :data:`NETWORK_ASK_EVERY` seconds while the network
  has one address here, so an instance learns of addresses seen only elsewhere. An instance that
  finds a network shared by itself says so once.
* **the site-wide asset tally** (``SITE_ASSETS_MIN``): assets served are added to
  ``<prefix>:site:assets`` (``lua/site_assets.lua``), and an instance that serves none reads it
  every :data:`ASSETS_ASK_EVERY` seconds, until the engine knows the minimum is passed; then
  this is never asked again.

Networks and assets are asked in the background: a request never waits for them, and their
answer counts from the next request on. At most :data:`MAX_BACKGROUND` such calls are in
flight; after a failure none is started for :data:`BACKOFF_SECONDS`. Offences are awaited,
within the same deadline as the counters: without an answer they are counted in the process
(``Engine.count_offences``), so a refusal always counts somewhere; local counts never flow back
into Redis (no burst of bans when it returns).

Keys name actors by the same keyed pseudonyms as the counters; nothing stores a raw address.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from .counters import TTL_SECONDS, RedisCounters
from .resp import NoScript, RespConnection, RespError, pack

log = logging.getLogger("scrapewarden")

NETWORK_ASK_EVERY = 10.0
"""Seconds between asks about a network that has had one address here."""
NETWORKS_REMEMBERED = 100_000
"""Networks whose last ask is remembered; beyond, the table starts again (a few asks repeat)."""
ASSETS_ASK_EVERY = 2.0
"""Seconds between reads of the site-wide asset tally by an instance serving no assets."""
ASSETS_TTL_SECONDS = 7 * 86400
"""How long the asset tally outlives the last asset added to it."""
MAX_BACKGROUND = 64
BACKOFF_SECONDS = 1.0
WARN_EVERY = 5.0
SEND_SECONDS = 1.0
"""A round trip still unanswered after this is abandoned (its callers gave up long before)."""

_SHARED = "*"
"""network_seen.lua's mark for a network two addresses have used (no pseudonym is "*")."""

_Call = tuple[Any, list[str], list[str]]
"""(script, keys, args)."""


def _script_text(name: str) -> str:
    return resources.files("scrapewarden.state.redis").joinpath(f"lua/{name}.lua").read_text(encoding="utf-8")


class SharedTallies:
    """Offences, shared networks and the site-wide asset tally on Redis (see module docs)."""

    def __init__(
        self,
        client: Any,
        *,
        name: Callable[[str, str], str],
        timeout: float = 0.005,
        prefix: str = "sw",
        fast: RespConnection | None = None,
    ) -> None:
        """``client``: a ``redis.asyncio.Redis`` or ``RedisCluster``; ``name(kind, key)``: the
        keyed pseudonym an actor is stored under (the counters' own)."""
        self.client = client
        self.name = name
        self.timeout = timeout
        self.prefix = prefix
        self._fast = fast
        self._offence = client.register_script(_script_text("offence"))
        self._network = client.register_script(_script_text("network_seen"))
        self._assets = client.register_script(_script_text("site_assets"))
        self._batch: list[tuple[Sequence[_Call], asyncio.Future[list[Any]]]] = []
        self._flush_scheduled = False
        self._sending: set[asyncio.Future[None]] = set()
        self._asked: dict[str, tuple[str, float]] = {}
        """network -> (the address last asked about, when to ask again)."""
        self._next_assets_read = float("-inf")
        self._background: set[asyncio.Future[None]] = set()
        self._paused_until = float("-inf")
        self.calls = 0
        self.failures = 0
        self.skipped = 0
        """Background asks not made: too many in flight, or Redis failed a moment ago."""
        self._warned = float("-inf")

    @classmethod
    def beside(cls, counters: RedisCounters) -> SharedTallies:
        """Tallies on the same Redis and pseudonyms as ``counters``. With a lean connection of
        their own, if the counters have one: a tally never waits behind the counters' batch."""
        theirs = getattr(counters, "_fast", None)
        fast = RespConnection(theirs.config) if isinstance(theirs, RespConnection) else None
        return cls(
            counters.client, name=counters.name, timeout=counters.timeout, prefix=counters.prefix, fast=fast
        )

    def _tag(self, kind: str, key: str) -> str:
        return f"{self.prefix}:c:{{{kind}:{self.name(kind, key)}}}"

    async def _run(self, calls: Sequence[_Call]) -> list[Any]:
        """Run (script, keys, args) calls and return their replies. On the lean connection every
        call made in one event-loop tick goes in one pipelined round trip; else each call goes
        through redis-py, concurrently (each call's keys share one hash tag: Cluster too)."""
        if self._fast is None:
            self.calls += 1
            return list(await asyncio.gather(*(script(keys=keys, args=args) for script, keys, args in calls)))
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Any]] = loop.create_future()
        self._batch.append((calls, done))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await done

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        if batch:
            task = asyncio.ensure_future(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Sequence[_Call], asyncio.Future[list[Any]]]]) -> None:
        """One round trip for a tick's calls; each caller gets its replies (or the error).
        Callers past their deadline have gone; the send itself gives up after SEND_SECONDS."""
        assert self._fast is not None
        self.calls += 1
        calls = [call for item, _ in batch for call in item]
        try:
            async with asyncio.timeout(SEND_SECONDS):
                replies = await self._send_fast(self._fast, calls)
        except Exception as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        at = 0
        for item, done in batch:
            mine = replies[at : at + len(item)]
            at += len(item)
            if done.done():
                continue
            failed = next((r for r in mine if isinstance(r, RespError)), None)
            if failed is not None:
                done.set_exception(failed)
            else:
                done.set_result(mine)

    @staticmethod
    async def _send_fast(fast: RespConnection, calls: list[_Call]) -> list[Any]:
        commands = [pack("EVALSHA", script.sha, str(len(keys)), *keys, *args) for script, keys, args in calls]
        replies = await fast.batch(commands)
        if any(isinstance(r, NoScript) for r in replies):
            # A restarted or flushed server: load the scripts concerned, then resend those calls.
            texts = {
                script.sha: script.script
                for (script, _, _), r in zip(calls, replies, strict=True)
                if isinstance(r, NoScript)
            }
            await fast.batch([pack("SCRIPT", "LOAD", text) for text in texts.values()])
            again = [c for c, r in zip(commands, replies, strict=True) if isinstance(r, NoScript)]
            redone = iter(await fast.batch(again))
            replies = [next(redone) if isinstance(r, NoScript) else r for r in replies]
        return replies

    # -- offences (awaited) ------------------------------------------------------------------------

    async def offences(
        self, offences: Sequence[tuple[str, str]], now: float, window_seconds: float, threshold: int
    ) -> list[float] | None:
        """Count one refusal for each (kind, key) of ``offences``; their counts within
        ``window_seconds``, or None when Redis did not answer within the deadline."""
        args = [repr(float(now)), repr(float(window_seconds)), str(int(threshold))]
        calls = [(self._offence, [self._tag(kind, key) + ":b"], args) for kind, key in offences]
        try:
            async with asyncio.timeout(self.timeout):
                replies = await self._run(calls)
        except Exception as exc:  # timeout, connection refused...: the caller counts locally
            self._failed(exc)
            return None
        return [float(r) for r in replies]

    # -- networks and assets (in the background) ---------------------------------------------------

    def network_seen(
        self, network: str, ip: str, now: float, shared: Callable[[str], None], *, counted: bool = False
    ) -> None:
        """Note ``ip`` in ``network`` on Redis, in the background; ``shared(network)`` once two
        addresses have used it. Asked only for a new (network, address) pair, or every
        :data:`NETWORK_ASK_EVERY` seconds of ``now``. ``counted``: this instance knows already
        that the network is shared, and says so once."""
        asked = self._asked.get(network)
        if asked is not None and (asked[0] == _SHARED or (asked[0] == ip and now < asked[1])):
            return
        if len(self._asked) >= NETWORKS_REMEMBERED:
            self._asked.clear()
        self._asked[network] = (_SHARED, 0.0) if counted else (ip, now + NETWORK_ASK_EVERY)
        args = [_SHARED if counted else self.name("ip", ip), str(TTL_SECONDS * 1000)]
        call = (self._network, [self._tag("network", network) + ":a"], args)

        def answered(reply: Any) -> None:
            if int(reply) == 1 and not counted:
                shared(network)

        self._in_background(call, answered)

    def site_assets(self, asset: bool, now: float, total: Callable[[int], None]) -> None:
        """Add an asset to the site-wide tally (``asset``), or read it at most every
        :data:`ASSETS_ASK_EVERY` seconds of ``now``; ``total(n)`` with the answer."""
        if not asset:
            if now < self._next_assets_read:
                return
            self._next_assets_read = now + ASSETS_ASK_EVERY
        args = ["1" if asset else "0", str(ASSETS_TTL_SECONDS * 1000)]
        self._in_background((self._assets, [f"{self.prefix}:site:assets"], args), lambda r: total(int(r)))

    def _in_background(self, call: _Call, answered: Callable[[Any], None]) -> None:
        if len(self._background) >= MAX_BACKGROUND or time.monotonic() < self._paused_until:
            self.skipped += 1
            return
        task = asyncio.ensure_future(self._ask(call, answered))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _ask(self, call: _Call, answered: Callable[[Any], None]) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                (reply,) = await self._run([call])
        except Exception as exc:
            self._failed(exc)
            return
        try:
            answered(reply)
        except Exception:  # a bug in the caller's callback must not go unseen, nor spread
            log.exception("scrapewarden: a shared tally's answer could not be used")

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for the background asks in flight: tests, and a clean shutdown."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout)

    def close(self) -> None:
        """Close the lean connection, if any (the redis-py client is the counters')."""
        if self._fast is not None:
            self._fast.close()

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        self._paused_until = now + BACKOFF_SECONDS
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning(
                "scrapewarden: shared tallies unavailable (%s); counting offences in this process",
                type(exc).__name__,
            )
