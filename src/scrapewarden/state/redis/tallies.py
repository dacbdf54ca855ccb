"""The rest of what the engine counts, shared on Redis: offences, shared networks, site assets.

:mod:`.counters` shares each actor's budgets. Three smaller tallies would otherwise stay per
process, and N instances would each give a scraper its own:

* **offences** for automatic bans: each refused request counts against the actors in the
  policy's ban scopes; ``blocks_before_ban`` of them within ``window_seconds`` ban the actor.
  :meth:`SharedTallies.offences` runs ``lua/offence.lua`` for each (key
  ``<prefix>:c:{<kind>:<pseudonym>}:b``, the actor's own hash tag) and hands the counts to a
  callback, where the engine judges them (``Engine.offences_counted``) and a ban due is
  imposed. Only refused requests pay for it.
* **shared networks**: a network is counted as an actor once two addresses use it. An address
  whose network is not counted here (``Pending.network_counted`` false) is noted in
  ``<prefix>:c:{network:<pseudonym>}:a`` (``lua/network_seen.lua``); the answer "two addresses
  have used it" marks the network shared in the engine, from the next request on. Asked once per
  (network, address) pair, and again after every :data:`NETWORK_ASK_AFTER` requests (at least
  :data:`NETWORK_ASK_EVERY` seconds apart) while the network has one address here, so an
  instance learns of addresses seen only elsewhere, and an address that sends much learns it
  soon. An instance that finds a network shared by itself says so once.
* **the site-wide asset tally** (``SITE_ASSETS_MIN``): assets served are added to
  ``<prefix>:site:assets`` (``lua/site_assets.lua``), and an instance that serves none reads it
  every :data:`ASSETS_ASK_EVERY` seconds, until the engine knows the minimum is passed; then
  this is never asked again.

All three are asked in the background: a request never waits for them, and their answer counts
from the next request on (a ban, too, holds from the next request, as in one process). On a
single server every ask of one event-loop tick shares one round trip (a lean connection of the
tallies' own); on a Cluster each call goes through redis-py. At most :data:`MAX_BACKGROUND`
asks wait for answers; after a failure none is made for :data:`BACKOFF_SECONDS`. Offences
without an answer within the deadline (or not asked) are counted in the process
(``Engine.count_offences``), so a refusal always counts somewhere; local counts never flow
back into Redis (no burst of bans when it returns). Synchronous doors ask from their own
threads: the asks are handed to :attr:`SharedTallies.loop` (the Warden's loop thread).

Keys name actors by the same keyed pseudonyms as the counters; nothing stores a raw address.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from .counters import TTL_SECONDS, RedisCounters
from .resp import RespConnection, RespError, pack

log = logging.getLogger("scrapewarden")

NETWORK_ASK_EVERY = 10.0
NETWORK_ASK_AFTER = 16
"""A network that has had one address here is asked about again after this many more
requests from it, at least :data:`NETWORK_ASK_EVERY` seconds after the last ask."""
NETWORKS_REMEMBERED = 100_000
"""Networks whose last ask is remembered; beyond, the table starts again (a few asks repeat)."""
ASSETS_ASK_EVERY = 2.0
"""Seconds between reads of the site-wide asset tally by an instance serving no assets."""
ASSETS_TTL_SECONDS = 7 * 86400
"""How long the asset tally outlives the last asset added to it."""
MAX_BACKGROUND = 256
"""Background asks waiting for an answer at most; beyond, new ones are skipped."""
BACKOFF_SECONDS = 1.0
WARN_EVERY = 5.0
SEND_SECONDS = 1.0
"""A round trip still unanswered after this is abandoned (its callers gave up long before)."""

_SHARED = "*"
"""network_seen.lua's mark for a network two addresses have used (no pseudonym is "*")."""

_Call = tuple[Any, list[str], list[str]]
"""(script, keys, args)."""
_Answered = Callable[[list[Any]], None]
_Failed = Callable[[], None]
_Item = tuple[Sequence[_Call], _Answered, _Failed | None]
"""Calls, what to do with their replies, and what to do instead when there are none."""


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
        keyed pseudonym an actor is stored under (the counters' own). ``fast``: a lean
        connection (single server), on which the calls of one event-loop tick share one
        round trip."""
        self.client = client
        self.name = name
        self.timeout = timeout
        self.prefix = prefix
        self._fast = fast
        self._offence = client.register_script(_script_text("offence"))
        self._network = client.register_script(_script_text("network_seen"))
        self._assets = client.register_script(_script_text("site_assets"))
        self._batch: list[_Item] = []
        self._flush_scheduled = False
        self._sending: set[asyncio.Future[None]] = set()
        self._asking: set[asyncio.Future[None]] = set()
        """Background asks through redis-py (no lean connection), one task each."""
        self._outstanding = 0
        """Background asks not answered yet."""
        self._asked: dict[str, tuple[str, int, float]] = {}
        """network -> (the address last asked about, its requests since, earliest next ask)."""
        self._next_assets_read = float("-inf")
        self._paused_until = float("-inf")
        self._count_lock = threading.Lock()
        """Guards ``_outstanding``: synchronous doors ask from many threads, answers come on the loop."""
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop the tallies' connections live on, for callers without a running loop
        (synchronous doors: the Warden's loop thread); None: always the caller's own loop."""
        self.calls = 0
        """Round trips (lean connection) or script calls (redis-py) made."""
        self.failures = 0
        self.skipped = 0
        """Background asks not made: too many waiting, or Redis failed a moment ago."""
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

    @property
    def paused(self) -> bool:
        """True for :data:`BACKOFF_SECONDS` after a failure: asks are not made (offences are
        then counted by the caller)."""
        return time.monotonic() < self._paused_until

    def _tag(self, kind: str, key: str) -> str:
        return f"{self.prefix}:c:{{{kind}:{self.name(kind, key)}}}"

    # -- offences -----------------------------------------------------------------------------------

    def offences(
        self,
        offences: Sequence[tuple[str, str]],
        now: float,
        window_seconds: float,
        threshold: int,
        counted: Callable[[list[float] | None], None],
    ) -> None:
        """Count one refusal for each (kind, key) of ``offences``, in the background; then
        ``counted(counts)`` with their counts within ``window_seconds``, or ``counted(None)``
        when Redis does not answer in time (or now, if the ask cannot be made): the caller then
        counts them itself, so a refusal always counts somewhere."""
        args = [repr(float(now)), repr(float(window_seconds)), str(int(threshold))]
        calls = [(self._offence, [self._tag(kind, key) + ":b"], args) for kind, key in offences]

        def answered(replies: list[Any]) -> None:
            counted([float(r) for r in replies])

        if not self._in_background(calls, answered, lambda: counted(None)):
            counted(None)

    # -- networks and assets (in the background) ---------------------------------------------------

    def network_seen(
        self, network: str, ip: str, now: float, shared: Callable[[str], None], *, counted: bool = False
    ) -> None:
        """Note ``ip`` in ``network`` on Redis, in the background; ``shared(network)`` once two
        addresses have used it. Asked for a new (network, address) pair, then again after
        :data:`NETWORK_ASK_AFTER` more requests and :data:`NETWORK_ASK_EVERY` seconds of
        ``now``. ``counted``: this instance knows that the network is shared; says so once."""
        asked = self._asked.get(network)
        if asked is not None:
            if asked[0] == _SHARED:
                return
            if asked[0] == ip and not counted:
                seen = asked[1] + 1
                if seen < NETWORK_ASK_AFTER or now < asked[2]:
                    self._asked[network] = (ip, seen, asked[2])
                    return

        def answered(replies: list[Any]) -> None:
            if int(replies[0]) == 1 and not counted:
                shared(network)

        args = [_SHARED if counted else self.name("ip", ip), str(TTL_SECONDS * 1000)]
        if self._in_background([(self._network, [self._tag("network", network) + ":a"], args)], answered):
            if len(self._asked) >= NETWORKS_REMEMBERED:
                self._asked.clear()
            self._asked[network] = (_SHARED, 0, 0.0) if counted else (ip, 0, now + NETWORK_ASK_EVERY)

    def site_assets(self, asset: bool, now: float, total: Callable[[int], None]) -> None:
        """Add an asset to the site-wide tally (``asset``), or read it at most every
        :data:`ASSETS_ASK_EVERY` seconds of ``now``; ``total(n)`` with the answer."""
        if not asset:
            if now < self._next_assets_read:
                return
            self._next_assets_read = now + ASSETS_ASK_EVERY
        args = ["1" if asset else "0", str(ASSETS_TTL_SECONDS * 1000)]
        call = (self._assets, [f"{self.prefix}:site:assets"], args)
        self._in_background([call], lambda replies: total(int(replies[0])))

    def _in_background(
        self, calls: Sequence[_Call], answered: _Answered, failed: _Failed | None = None
    ) -> bool:
        """Start one ask (its calls answered together); False when skipped: too many waiting,
        Redis failed just now, or no loop to ask from. ``failed()`` runs if it gets no answer
        within the deadline. Callable on the loop, or from any thread once :attr:`loop` is set
        (the ask then joins the loop's next tick)."""
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        loop = here or self.loop
        if loop is None or time.monotonic() < self._paused_until:
            self.skipped += 1
            return False
        with self._count_lock:
            if self._outstanding >= MAX_BACKGROUND:
                self.skipped += 1
                return False
            self._outstanding += 1
        item: _Item = (calls, answered, failed)
        if here is None:
            loop.call_soon_threadsafe(self._start, item)
        else:
            self._start(item)
        return True

    def _start(self, item: _Item) -> None:
        """On the loop: join this tick's batch (lean connection), or ask through redis-py."""
        if self._fast is not None:
            self._queue(item)
        else:
            task = asyncio.ensure_future(self._ask_slow(*item))
            self._asking.add(task)
            task.add_done_callback(self._asking.discard)

    def _answered(self, count: int) -> None:
        with self._count_lock:
            self._outstanding -= count

    async def _ask_slow(self, calls: Sequence[_Call], answered: _Answered, failed: _Failed | None) -> None:
        """One ask through redis-py: each call on its own, concurrently (Cluster: each call's
        keys share one hash tag)."""
        try:
            self.calls += len(calls)
            async with asyncio.timeout(self.timeout):
                replies = await asyncio.gather(
                    *(script(keys=keys, args=args) for script, keys, args in calls)
                )
        except Exception as exc:
            self._failed(exc)
            self._run(failed)
        else:
            self._run(answered, list(replies))
        finally:
            self._answered(1)

    @staticmethod
    def _run(callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # a bug in the caller's callback must not go unseen, nor spread
            log.exception("scrapewarden: a shared tally's answer could not be used")

    # -- the lean connection's batches ---------------------------------------------------------------

    def _queue(self, item: _Item) -> None:
        """Join the batch of this event-loop tick: one round trip for all of it."""
        self._batch.append(item)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        if batch:
            task = asyncio.ensure_future(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Item]) -> None:
        """One round trip for a tick's asks, each answered by its callback. Without an answer
        within the deadline every ask counts as failed (its ``failed()`` runs) and the reply,
        when it comes, is not used."""
        assert self._fast is not None
        self.calls += 1
        calls = [call for item in batch for call in item[0]]
        sent = asyncio.ensure_future(self._send_fast(self._fast, calls))
        # Seen even when nobody is left to await it (this ask cancelled at shutdown, say).
        sent.add_done_callback(_seen)
        try:
            done, _ = await asyncio.wait([sent], timeout=self.timeout)
        finally:
            self._answered(len(batch))
        if not done:
            self._failed(TimeoutError("no answer within the deadline"))
            for _, _, failed in batch:
                self._run(failed)
            # The round trip may finish late (up to SEND_SECONDS): reading its reply keeps the
            # connection usable; giving up on it closes the connection (the next batch opens one).
            try:
                async with asyncio.timeout(SEND_SECONDS):
                    await sent
            except Exception:
                pass
            return
        try:
            replies = sent.result()
        except Exception as exc:
            self._failed(exc)
            for _, _, failed in batch:
                self._run(failed)
            return
        at = 0
        for item, answered, failed in batch:
            mine = replies[at : at + len(item)]
            at += len(item)
            error = next((r for r in mine if isinstance(r, RespError)), None)
            if error is not None:
                self._failed(error)
                self._run(failed)
            else:
                self._run(answered, mine)

    @staticmethod
    async def _send_fast(fast: RespConnection, calls: list[_Call]) -> list[Any]:
        commands = [pack("EVALSHA", script.sha, str(len(keys)), *keys, *args) for script, keys, args in calls]
        return await fast.scripts(commands, [script.script for script, _, _ in calls])

    # -- housekeeping ----------------------------------------------------------------------------------

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until every ask made so far is answered: tests, a clean shutdown."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._batch or self._flush_scheduled or self._sending or self._asking:
            left = deadline - loop.time()
            if left <= 0:
                return
            waiting = self._sending | self._asking
            if waiting:
                await asyncio.wait(list(waiting), timeout=left)
            else:
                await asyncio.sleep(0)

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


def _seen(task: asyncio.Future[Any]) -> None:
    """Mark a finished round trip's failure as retrieved (its asker may have gone)."""
    if not task.cancelled():
        task.exception()
