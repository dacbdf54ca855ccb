"""Who decides for the proxy: the Warden in this process, or one shared decider process.

With one worker the proxy calls its own :class:`~scrapewarden.warden.Warden` directly
(:class:`LocalDecider`, ~20 µs per request, no await), and checks challenge answers with the same
Warden in a thread (:func:`verify_with`, the one way both deciders check them).

With ``--workers N`` the counters that make up a scraper's budget must not be split N ways,
or a scraper spreading its requests over the workers (which SO_REUSEPORT does for it) would get
N budgets. Counters change on every request, so keeping them in SQLite would cost a write per
request. Instead exactly one process owns the engine: the *decider*. Workers send it each
request's facts over a Unix socket and get the action back (:class:`RemoteDecider`).

Wire format, both directions: a 4-byte big-endian length, then a ``marshal``-encoded tuple.
``marshal`` is used because it is the fastest encoder in the standard library for tuples of
bytes and str; it is only safe between processes we started ourselves, which is why the socket
lives in a private (0700) directory made by the supervising process. Workers queue requests and
send them once per event-loop turn, and the decider answers everything it read in one write, so
under load one round trip carries many decisions.

Request:  ``(id, peer, method, path, query, scheme, headers)``
Answer:   ``(id, action, enforced, retry_after, tarpit_seconds, decoy, record, challenge_bits)``

The challenge key. Workers render the challenge pages and serve their scripts themselves (that
needs only the key), but a challenge issued by one worker must verify in any other, and the
clearance it earns must satisfy the decider. So the decider's key is the only key: a worker
asks for it once connected (request ``("key", worker_pid)``, answer ``("key", key_bytes)``), and
the decider sends it again to every worker after a policy reload, in case the policy named a new
one.

Answers. Workers do not check answers (``POST /.sw/verify``): they pass the parsed form on
(request ``("verify", id, form, client_ip, user_agent, https)``) and write back what the decider
replies (answer ``("verified", id, status, headers, body, reference)``). So a challenge is spent
once for all workers (and, through the store's ``spend_once``, for every instance sharing the
store), and every checked answer reaches the event trail as ``challenge_passed`` /
``challenge_failed`` through the decider's Warden. The decider checks each answer in a thread (a
CAPTCHA provider may be asked over the network), so decisions keep flowing meanwhile. A worker
waits at most :data:`VERIFY_WAIT` seconds; without an answer (decider gone, restarting or stuck)
the person gets a 503 page saying to try again, nothing spent, and the worker counts and logs it.

Challenge pages issued: each worker counts the pages it renders and adds the count to its next
message to the decider (``("issued", n)``), so the decider's ``challenges.stats`` holds issued,
passed and refused answers for the whole proxy, as the one-process proxy's does.

If the decider goes away, workers let requests through (logged), answer ``/.sw/verify`` with the
503 page, and reconnect as soon as a decider listens again (the supervisor starts a new one).

Bans go through the state store as always: the decider imposes them and every process
(including the CLI) sees them there.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import marshal
import os
import struct
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..challenge.service import ChallengeService
from ..core.decision import Action, Decision
from ..core.policy import Policy
from ..warden import Warden, build_engine
from .asgi import plain_reply
from .own_pages import Client, check_answer
from .responses import Reply, unavailable

log = logging.getLogger("scrapewarden.proxy")

_LENGTH = struct.Struct(">I")
MAX_FRAME = 1 << 22
"""A request's facts are bounded by the proxy's header limit; anything bigger is a bug."""

VERIFY_WAIT = 45.0
"""Seconds a worker waits for the decider to check an answer: longer than a CAPTCHA provider's
check may take (``challenge.captcha.timeout_seconds`` is at most 10 s per network step: connect,
send, read), short enough that a stuck decider gives the person a 503 rather than a hang."""

RECONNECT_EVERY = 0.2
"""Seconds between a worker's attempts to reach a decider that went away."""


class Decider(Protocol):
    """The proxy's view of the engine."""

    policy: Policy

    @property
    def challenges(self) -> ChallengeService:
        """Challenge pages, signed with the key the engine checks clearance with."""
        ...

    def decide(
        self,
        peer: str,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[bytes, bytes]],
        scheme: str,
    ) -> Decision | asyncio.Future[Decision]: ...

    async def verify(self, form: Mapping[str, str], client: Client) -> Reply:
        """Check an answer posted to ``/.sw/verify`` where the engine is (never raises)."""
        ...

    def reload(self, policy: Policy) -> None: ...

    def close(self) -> None: ...


def reloaded_warden(old: Warden, policy: Policy) -> Warden:
    """A Warden for ``policy`` sharing ``old``'s store, bans and counters.

    Bans live in the store too, so they would come back within seconds anyway; counters live only
    in memory: without them every reload would give every scraper a fresh budget.
    """
    new = Warden(policy, state=old.store, engine=build_engine(policy), clock=old.clock)
    new.engine.adopt_state(old.engine)
    return new


async def decide_shared(warden: Warden, **request: Any) -> Decision:
    """``Warden.decide_http_async`` (shared counters); a failure lets the request through, as
    every door does, instead of leaving it waiting."""
    try:
        return await warden.decide_http_async(**request)
    except Exception:
        log.exception("proxy: deciding failed; letting the request through")
        return Decision(action=Action.ALLOW, score=0.0)


async def verify_with(warden: Warden, form: Mapping[str, str], client: Client) -> Reply:
    """Check an answer with ``warden``'s challenge service: spent in its memory and its store,
    recorded in its event trail. The one way both deciders check answers."""
    try:
        return await check_answer(warden.challenges, form, client)
    except Exception:
        log.exception("proxy: checking a challenge answer failed")
        return plain_reply(500, "Something went wrong.")


class LocalDecider:
    """The engine in this process."""

    def __init__(self, warden: Warden) -> None:
        self.warden = warden
        self.policy = warden.policy

    @property
    def challenges(self) -> ChallengeService:
        return self.warden.challenges

    def decide(
        self,
        peer: str,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[bytes, bytes]],
        scheme: str,
    ) -> Decision | asyncio.Future[Decision]:
        if self.warden.counters is not None:  # shared counters: counted on Redis, awaited
            return asyncio.ensure_future(
                decide_shared(
                    self.warden,
                    peer=peer,
                    method=method,
                    path=path,
                    query=query,
                    headers=headers,
                    scheme=scheme,
                )
            )
        return self.warden.decide_http(
            peer=peer, method=method, path=path, query=query, headers=headers, scheme=scheme
        )

    async def verify(self, form: Mapping[str, str], client: Client) -> Reply:
        return await verify_with(self.warden, form, client)

    def reload(self, policy: Policy) -> None:
        self.warden = reloaded_warden(self.warden, policy)
        self.policy = policy

    def close(self) -> None:
        self.warden.close()


# -- the decider process ------------------------------------------------------------------------


def _encode(payload: Any) -> bytes:
    data = marshal.dumps(payload)
    return _LENGTH.pack(len(data)) + data


def _frames(buffer: bytearray) -> list[Any]:
    """Complete frames at the front of ``buffer`` (removed from it)."""
    out: list[Any] = []
    offset = 0
    size = len(buffer)
    while size - offset >= 4:
        (length,) = _LENGTH.unpack_from(buffer, offset)
        if length > MAX_FRAME:
            raise ValueError("decider frame too large")
        if size - offset - 4 < length:
            break
        out.append(marshal.loads(bytes(buffer[offset + 4 : offset + 4 + length])))
        offset += 4 + length
    del buffer[:offset]
    return out


class _DeciderConnection(asyncio.Protocol):
    def __init__(self, service: DeciderService) -> None:
        self.service = service
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.worker = 0
        """The worker's pid, from its key request (0 until then)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.service.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.service.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            requests = _frames(self.buffer)
        except Exception:
            log.exception("decider: unreadable frame; dropping the worker connection")
            assert self.transport is not None
            self.transport.abort()
            return
        answers = [self.service.answer(request, self) for request in requests]
        if answers and self.transport is not None:
            self.transport.write(b"".join(answers))

    def send(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)


class DeciderService:
    """Owns the Warden for all workers; answers over a Unix socket."""

    def __init__(self, warden: Warden) -> None:
        self.warden = warden
        self.answered = 0
        self.connections: set[_DeciderConnection] = set()
        self.checked: collections.Counter[int] = collections.Counter()
        """Answers checked, per worker pid (how an operator or a test sees every worker's share)."""
        self.tasks: set[asyncio.Task[None]] = set()
        self._key_sent = warden.challenges.key

    def key_frame(self) -> bytes:
        self._key_sent = key = self.warden.challenges.key
        return _encode(("key", key))

    def _send_key_if_changed(self) -> None:
        """A key made while the store could not answer is replaced by the shared one once it
        can (ChallengeService.converge_key): the workers must then sign with that one too."""
        if self.warden.challenges.key is not self._key_sent:
            frame = self.key_frame()
            for connection in list(self.connections):
                connection.send(frame)

    def answer(self, request: Any, connection: _DeciderConnection | None = None) -> bytes:
        kind = request[0] if isinstance(request, tuple) and request else None
        if kind == "key":
            if connection is not None and len(request) > 1 and isinstance(request[1], int):
                connection.worker = request[1]
                log.warning("decider: worker %d connected (%d in all)", request[1], len(self.connections))
            return self.key_frame()
        if kind == "issued":
            if len(request) == 2 and isinstance(request[1], int):
                self.warden.challenges.stats["issued"] += max(0, request[1])
            return b""
        if kind == "verify":
            if connection is not None:
                task = asyncio.get_running_loop().create_task(self._verify(request, connection))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            return b""
        try:
            req_id, peer, method, path, query, scheme, headers = request
            if self.warden.counters is not None and connection is not None:
                # Shared counters: the answer goes out when Redis has counted (or the deadline
                # passed); the frames carry request ids, so answers may overtake each other.
                task = asyncio.get_running_loop().create_task(
                    self._decide_shared(req_id, connection, peer, method, path, query, scheme, headers)
                )
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                return b""
            decision = self.warden.decide_http(
                peer=peer, method=method, path=path, query=query, headers=headers, scheme=scheme
            )
        except Exception:
            log.exception("decider: deciding failed; answering allow")
            req_id = request[0] if isinstance(request, tuple) and request else -1
            return _encode((req_id, 0, False, 0, 0.0, False, None, 0))
        return self._decision_frame(req_id, decision)

    async def _decide_shared(
        self,
        req_id: int,
        connection: _DeciderConnection,
        peer: str,
        method: str,
        path: str,
        query: str,
        scheme: str,
        headers: Sequence[tuple[bytes, bytes]],
    ) -> None:
        decision = await decide_shared(
            self.warden, peer=peer, method=method, path=path, query=query, headers=headers, scheme=scheme
        )
        connection.send(self._decision_frame(req_id, decision))

    def _decision_frame(self, req_id: int, decision: Decision) -> bytes:
        self.answered += 1
        self._send_key_if_changed()
        return _encode(
            (
                req_id,
                int(decision.action),
                decision.enforced,
                decision.retry_after,
                decision.tarpit_seconds,
                decision.decoy,
                decision.record,
                decision.challenge_bits,
            )
        )

    async def _verify(self, request: tuple[Any, ...], connection: _DeciderConnection) -> None:
        req_id = request[1] if len(request) > 1 else -1
        try:
            _, req_id, form, ip, user_agent, https = request
            client = Client(ip=str(ip), user_agent=str(user_agent), https=bool(https), lang="en")
            checked = dict(form)
        except Exception:
            log.error("decider: unreadable answer from worker %d; refusing it", connection.worker)
            reply = plain_reply(400, "Unreadable answer.")
        else:
            reply = await verify_with(self.warden, checked, client)
        self.checked[connection.worker] += 1
        frame = ("verified", req_id, reply.status, list(reply.headers), reply.body, reply.reference)
        connection.send(_encode(frame))

    def reload(self, policy: Policy) -> None:
        self.warden = reloaded_warden(self.warden, policy)
        frame = self.key_frame()
        for connection in list(self.connections):
            connection.send(frame)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for answers still being checked, before the Warden closes."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)

    def summary(self) -> str:
        """One log line: what this decider did (no personal data)."""
        checked = {pid: self.checked[pid] for pid in sorted(self.checked)}
        return (
            f"{self.answered} decisions, answers checked per worker pid {checked}, "
            f"challenges {dict(sorted(self.warden.challenges.stats.items()))}"
        )

    async def serve(self, path: Path) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        return await loop.create_unix_server(lambda: _DeciderConnection(self), str(path))


# -- the worker's side ---------------------------------------------------------------------------


class _DeciderClient(asyncio.Protocol):
    def __init__(self, owner: RemoteDecider) -> None:
        self.owner = owner
        self.buffer = bytearray()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            answers = _frames(self.buffer)
        except Exception:
            log.exception("proxy: unreadable answer from the decider")
            self.owner.lost(self.transport)
            return
        for answer in answers:
            self.owner.resolve(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost(self.transport)


class RemoteDecider:
    """Asks the decider process. Fails open (allow, logged) when the decider is unreachable;
    answers to the challenge then get a 503 page (counted in :attr:`unchecked`)."""

    def __init__(
        self, path: Path, policy: Policy, loop: asyncio.AbstractEventLoop, *, verify_wait: float = VERIFY_WAIT
    ) -> None:
        self.path = path
        self.policy = policy
        self.loop = loop
        self.verify_wait = verify_wait
        self._key: bytes | None = None
        self._key_known: asyncio.Event = asyncio.Event()
        self._challenges: ChallengeService | None = None
        self.transport: asyncio.Transport | None = None
        self.pending: dict[int, asyncio.Future[Decision]] = {}
        self.verifying: dict[int, asyncio.Future[Reply | None]] = {}
        self.outbox: list[bytes] = []
        self.next_id = 0
        self.round_trips = 0
        self.unchecked = 0
        """Answers the decider could not check (it was unreachable or too slow): each got a 503."""
        self._issued_unsent = 0
        self._issued_seen = 0
        self._flush_scheduled = False
        self._last_complaint = 0.0
        self._closed = False
        self._lost = False
        self._reconnecting: asyncio.Task[None] | None = None

    async def connect(self, timeout: float = 30.0) -> None:
        """Reach the decider and learn its key, waiting up to ``timeout`` seconds (it may be
        starting, or being restarted: a connection lost meanwhile is retried)."""
        try:
            async with asyncio.timeout(timeout):
                while not await self._try_connect():
                    await asyncio.sleep(0.05)
                await self._key_known.wait()
        except TimeoutError:
            raise ConnectionError(f"no challenge key from a decider at {self.path}") from None

    async def _try_connect(self) -> bool:
        try:
            transport, _ = await self.loop.create_unix_connection(
                lambda: _DeciderClient(self), str(self.path)
            )
        except OSError:
            return False
        self.transport = transport
        transport.write(_encode(("key", os.getpid())))
        return True

    async def _reconnect(self) -> None:
        """Until closed: reach the decider again (the supervisor restarts one that died). The
        decider's key answer (:meth:`resolve`) is what says it is really back."""
        try:
            while not self._closed:
                await asyncio.sleep(RECONNECT_EVERY)
                if await self._try_connect():
                    return
        finally:
            self._reconnecting = None

    @property
    def challenges(self) -> ChallengeService:
        """This worker's challenge service for pages, signing with the decider's key."""
        if self._challenges is None:
            raise RuntimeError("not connected to the decider yet")
        return self._challenges

    def _set_key(self, key: bytes) -> None:
        self._key = key
        self._rekey()
        self._key_known.set()

    def _rekey(self) -> None:
        assert self._key is not None
        self._issued_unsent += self._issued_delta()
        self._challenges = keyed_challenges(self.policy, self._key)
        self._issued_seen = 0

    def _issued_delta(self) -> int:
        """Challenge pages rendered by this worker since last asked."""
        if self._challenges is None:
            return 0
        count = self._challenges.stats["issued"]
        delta, self._issued_seen = count - self._issued_seen, count
        return delta

    def _connected(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def _next_id(self) -> int:
        self.next_id = (self.next_id + 1) & 0x7FFFFFFF
        return self.next_id

    def _send(self, frame: bytes) -> None:
        self.outbox.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def decide(
        self,
        peer: str,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[bytes, bytes]],
        scheme: str,
    ) -> Decision | asyncio.Future[Decision]:
        if not self._connected():
            self._complain("decider unreachable; letting requests through")
            return Decision(action=Action.ALLOW, score=0.0)
        req_id = self._next_id()
        future: asyncio.Future[Decision] = self.loop.create_future()
        self.pending[req_id] = future
        self._send(_encode((req_id, peer, method, path, query, scheme, list(headers))))
        return future

    async def verify(self, form: Mapping[str, str], client: Client) -> Reply:
        """The decider's reply to this answer; a 503 page if it cannot give one in time."""
        if not self._connected():
            return self._unchecked("decider unreachable; answers get a 503")
        req_id = self._next_id()
        future: asyncio.Future[Reply | None] = self.loop.create_future()
        self.verifying[req_id] = future
        self._send(_encode(("verify", req_id, dict(form), client.ip, client.user_agent, client.https)))
        try:
            async with asyncio.timeout(self.verify_wait):
                reply = await future
        except TimeoutError:
            return self._unchecked("the decider did not check an answer in time; it got a 503")
        finally:
            self.verifying.pop(req_id, None)
        if reply is None:
            return self._unchecked("the decider went away while checking an answer; it got a 503")
        return reply

    def _unchecked(self, message: str) -> Reply:
        self.unchecked += 1
        self._complain(message)
        return unavailable()

    def _flush(self) -> None:
        self._flush_scheduled = False
        issued = self._issued_unsent + self._issued_delta()
        if issued and self._connected():
            self.outbox.append(_encode(("issued", issued)))
            issued = 0
        self._issued_unsent = issued
        if self.outbox and self.transport is not None:
            self.transport.write(b"".join(self.outbox))
            self.round_trips += 1
        self.outbox.clear()

    def resolve(self, answer: Any) -> None:
        kind = answer[0]
        if kind == "key":
            if self._lost:
                self._lost = False
                log.warning("proxy: reached the decider again")
            self._set_key(bytes(answer[1]))
            return
        if kind == "verified":
            _, req_id, status, headers, body, reference = answer
            waiting = self.verifying.pop(req_id, None)
            if waiting is not None and not waiting.done():
                pairs = [(str(name), str(value)) for name, value in headers]
                waiting.set_result(Reply(status=status, headers=pairs, body=bytes(body), reference=reference))
            return
        req_id, action, enforced, retry_after, tarpit, decoy, record, bits = answer
        future = self.pending.pop(req_id, None)
        if future is None or future.done():
            return
        future.set_result(
            Decision(
                action=Action(action),
                score=0.0,
                enforced=enforced,
                retry_after=retry_after,
                tarpit_seconds=tarpit,
                decoy=decoy,
                record=(record[0], record[1]) if record else None,
                challenge_bits=bits,
            )
        )

    def lost(self, transport: asyncio.BaseTransport | None = None) -> None:
        if transport is not None and transport is not self.transport:
            return  # an old connection's late goodbye
        if self.transport is not None:
            self.transport.abort()
        self.transport = None
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_result(Decision(action=Action.ALLOW, score=0.0))
        verifying, self.verifying = self.verifying, {}
        for waiting in verifying.values():
            if not waiting.done():
                waiting.set_result(None)
        self._lost = True
        if not self._closed and self._reconnecting is None:
            log.error("proxy: lost the decider; letting requests through until it is back")
            self._reconnecting = self.loop.create_task(self._reconnect())

    def _complain(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_complaint > 5.0:
            self._last_complaint = now
            log.error("proxy: %s", message)

    def reload(self, policy: Policy) -> None:
        # The decider reloads its own engine; the worker only needs the reply and page settings
        # (and the decider sends its key again once it has reloaded).
        self.policy = policy
        if self._key is not None:
            self._rekey()

    def close(self) -> None:
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self.transport is not None:
            self.transport.close()


def keyed_challenges(policy: Policy, key: bytes) -> ChallengeService:
    """A challenge service for ``policy`` that signs pages with ``key`` (the decider's).

    Without a store the service makes up a key of its own; it is replaced before first use. A
    worker only renders pages with it: answers are checked by the decider (see above).
    """
    service = ChallengeService(policy, None)
    service.key = key
    return service
