"""Who decides for the proxy: the Warden in this process, or one shared decider process.

With one worker the proxy calls its own :class:`~scrapewarden.warden.Warden` directly
(:class:`LocalDecider`, ~20 µs per request, no await).

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

The challenge key. Workers answer the challenge pages themselves (rendering a page or checking
an answer needs no engine), but a challenge issued by one worker must verify in any other, and
the clearance it earns must satisfy the decider. So the decider's key is the only key: a worker
asks for it once connected (request ``("key",)``, answer ``("key", key_bytes)``), and the decider
sends it again to every worker after a policy reload, in case the policy named a new one.

Bans go through the state store as always: the decider imposes them and every process
(including the CLI) sees them there.
"""

from __future__ import annotations

import asyncio
import logging
import marshal
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ..challenge.service import ChallengeService
from ..core.decision import Action, Decision
from ..core.policy import Policy
from ..warden import Warden, build_engine

log = logging.getLogger("scrapewarden.proxy")

_LENGTH = struct.Struct(">I")
MAX_FRAME = 1 << 22
"""A request's facts are bounded by the proxy's header limit; anything bigger is a bug."""


class Decider(Protocol):
    """The proxy's view of the engine."""

    policy: Policy

    @property
    def challenges(self) -> ChallengeService:
        """Challenge pages and answers, signed with the key the engine checks clearance with."""
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
    ) -> Decision:
        return self.warden.decide_http(
            peer=peer, method=method, path=path, query=query, headers=headers, scheme=scheme
        )

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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.service.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.service.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            requests = _frames(self.buffer)
        except Exception:
            log.exception("decider: unreadable frame; dropping the worker connection")
            assert self.transport is not None
            self.transport.abort()
            return
        answers = [self.service.answer(request) for request in requests]
        if answers and self.transport is not None:
            self.transport.write(b"".join(answers))


class DeciderService:
    """Owns the Warden for all workers; answers over a Unix socket."""

    def __init__(self, warden: Warden) -> None:
        self.warden = warden
        self.answered = 0
        self.connections: set[_DeciderConnection] = set()

    def key_frame(self) -> bytes:
        return _encode(("key", self.warden.challenges.key))

    def answer(self, request: Any) -> bytes:
        if request == ("key",):
            return self.key_frame()
        try:
            req_id, peer, method, path, query, scheme, headers = request
            decision = self.warden.decide_http(
                peer=peer, method=method, path=path, query=query, headers=headers, scheme=scheme
            )
        except Exception:
            log.exception("decider: deciding failed; answering allow")
            req_id = request[0] if isinstance(request, tuple) and request else -1
            return _encode((req_id, 0, False, 0, 0.0, False, None, 0))
        self.answered += 1
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

    def reload(self, policy: Policy) -> None:
        self.warden = reloaded_warden(self.warden, policy)
        frame = self.key_frame()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.write(frame)

    async def serve(self, path: Path) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        return await loop.create_unix_server(lambda: _DeciderConnection(self), str(path))


# -- the worker's side ---------------------------------------------------------------------------


class _DeciderClient(asyncio.Protocol):
    def __init__(self, owner: RemoteDecider) -> None:
        self.owner = owner
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            answers = _frames(self.buffer)
        except Exception:
            log.exception("proxy: unreadable answer from the decider")
            self.owner.lost()
            return
        for answer in answers:
            self.owner.resolve(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost()


class RemoteDecider:
    """Asks the decider process. Fails open (allow, logged) when the decider is unreachable."""

    def __init__(self, path: Path, policy: Policy, loop: asyncio.AbstractEventLoop) -> None:
        self.path = path
        self.policy = policy
        self.loop = loop
        self._key: bytes | None = None
        self._key_known: asyncio.Event = asyncio.Event()
        self._challenges: ChallengeService | None = None
        self.transport: asyncio.Transport | None = None
        self.pending: dict[int, asyncio.Future[Decision]] = {}
        self.outbox: list[bytes] = []
        self.next_id = 0
        self.round_trips = 0
        self._flush_scheduled = False
        self._last_complaint = 0.0

    async def connect(self, attempts: int = 100) -> None:
        for _ in range(attempts):
            try:
                self.transport, _ = await self.loop.create_unix_connection(
                    lambda: _DeciderClient(self), str(self.path)
                )
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise ConnectionError(f"decider not reachable at {self.path}")
        self.transport.write(_encode(("key",)))
        try:
            async with asyncio.timeout(30.0):
                await self._key_known.wait()
        except TimeoutError:
            raise ConnectionError("the decider did not send the challenge key") from None

    @property
    def challenges(self) -> ChallengeService:
        """This worker's challenge service, signing with the decider's key."""
        if self._challenges is None:
            raise RuntimeError("not connected to the decider yet")
        return self._challenges

    def _set_key(self, key: bytes) -> None:
        self._key = key
        self._challenges = keyed_challenges(self.policy, key)
        self._key_known.set()

    def decide(
        self,
        peer: str,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[bytes, bytes]],
        scheme: str,
    ) -> Decision | asyncio.Future[Decision]:
        if self.transport is None or self.transport.is_closing():
            self._complain("decider unreachable; letting requests through")
            return Decision(action=Action.ALLOW, score=0.0)
        self.next_id = req_id = (self.next_id + 1) & 0x7FFFFFFF
        future: asyncio.Future[Decision] = self.loop.create_future()
        self.pending[req_id] = future
        self.outbox.append(_encode((req_id, peer, method, path, query, scheme, list(headers))))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.outbox and self.transport is not None:
            self.transport.write(b"".join(self.outbox))
            self.round_trips += 1
        self.outbox.clear()

    def resolve(self, answer: Any) -> None:
        if answer[0] == "key":
            self._set_key(bytes(answer[1]))
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

    def lost(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.transport = None
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_result(Decision(action=Action.ALLOW, score=0.0))
        if pending:
            self._complain("lost the decider; letting requests through")

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
            self._challenges = keyed_challenges(policy, self._key)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def keyed_challenges(policy: Policy, key: bytes) -> ChallengeService:
    """A challenge service for ``policy`` that signs and checks with ``key`` (the decider's).

    Without a store the service makes up a key of its own; it is replaced before first use. Each
    worker keeps its own memory of spent challenges: see the caveat in
    :mod:`scrapewarden.challenge.service`.
    """
    service = ChallengeService(policy, None)
    service.key = key
    return service
