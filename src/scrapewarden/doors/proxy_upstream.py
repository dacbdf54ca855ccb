"""The proxy's side towards the upstream: one protocol per connection, and a bounded pool.

An :class:`UpstreamConnection` carries one exchange at a time for a :class:`Sink` (the client
connection that owns the request) and reports the response to it as it arrives: head, body
pieces, end. Nothing is buffered here beyond what the event loop hands us; when the client
cannot keep up, the sink pauses our reading and TCP pushes back on the upstream.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Protocol

import httptools

log = logging.getLogger("scrapewarden.proxy")


class Sink(Protocol):
    """What an upstream connection reports to the client connection it works for."""

    def response_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None: ...

    def interim_response(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None: ...

    def response_body(self, data: bytes) -> None: ...

    def response_done(self) -> None: ...

    def tunnel_data(self, data: bytes) -> None: ...

    def upstream_failed(self, kind: str, detail: str) -> None:
        """``kind`` is ``reset`` (502), ``bad`` (502, unparsable answer) or ``timeout`` (504)."""

    def upstream_pause(self, paused: bool) -> None:
        """The upstream's send buffer is full (True) or drained (False): stop/resume reading the client."""


class UpstreamConnection(asyncio.Protocol):
    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: Sink | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.reason = b""
        self.head_request = False
        self.got_bytes = False
        self.sent_all = False
        self.tunnel = False
        self.closed = False
        self.uses = 0
        self.last_activity = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio callbacks ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stop_timer()
        self.pool.lost(self)
        sink, self.sink = self.sink, None
        if sink is not None:
            if self.tunnel:
                sink.upstream_failed("closed", "")
            else:
                sink.upstream_failed("reset", "upstream closed the connection" + (f": {exc}" if exc else ""))

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_pause(True)

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_pause(False)

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.loop.time()
        sink = self.sink
        if sink is None:  # bytes nobody asked for: this connection is no longer trustworthy
            self.abort()
            return
        if self.tunnel:
            sink.tunnel_data(data)
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            offset = upgrade.args[0]
            if self.tunnel and offset < len(data):
                sink.tunnel_data(data[offset:])
        except httptools.HttpParserError as exc:
            self.sink = None
            self.abort()
            sink.upstream_failed("bad", f"unparsable response from upstream: {exc}")

    # -- httptools callbacks --------------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        sink = self.sink
        if sink is None:
            return
        status = self.parser.get_status_code()
        headers, self.headers = self.headers, []
        reason, self.reason = self.reason, b""
        if 100 <= status < 200 and status != 101:
            sink.interim_response(status, reason, headers)
            return
        if status == 101:
            self.tunnel = True
            self._stop_timer()
        sink.response_head(status, reason, headers)
        if self.head_request and status != 101:
            # llhttp cannot know the request was HEAD and would wait for the announced body.
            reusable = self.parser.should_keep_alive()
            self.parser = httptools.HttpResponseParser(self)
            self._finish(reusable=reusable)

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            self.sink.response_body(body)

    def on_message_complete(self) -> None:
        if self.sink is None or self.tunnel:
            return
        self._finish(reusable=self.parser.should_keep_alive())

    # -- used by the client side ----------------------------------------------------------------

    def start(self, sink: Sink, head: bytes, *, head_request: bool, read_timeout: float) -> None:
        """Send a request head and wait for the answer on behalf of ``sink``."""
        self.sink = sink
        self.head_request = head_request
        self.got_bytes = False
        self.sent_all = False
        self.uses += 1
        self.last_activity = self.loop.time()
        self._timer = self.loop.call_later(read_timeout, self._check_timeout, read_timeout)
        assert self.transport is not None
        self.transport.write(head)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def request_sent(self) -> None:
        """The whole request is out: the read timeout counts from here."""
        self.sent_all = True
        self.last_activity = self.loop.time()

    def pause_reading(self, paused: bool) -> None:
        if self.transport is None or self.closed:
            return
        if paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def abort(self) -> None:
        self.sink = None
        self._stop_timer()
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()
            self.pool.lost(self)

    # -- internals ------------------------------------------------------------------------------

    def _finish(self, *, reusable: bool) -> None:
        sink, self.sink = self.sink, None
        self._stop_timer()
        # An early answer (say, a 413 before the upload ended) leaves the request half sent:
        # such a connection cannot carry another request.
        if reusable and self.sent_all:
            # The client side may have paused our reading (backpressure) just as the response
            # ended; a pooled connection left paused would never hear its next answer.
            if self.transport is not None and not self.transport.is_reading():
                self.transport.resume_reading()
            self.pool.release(self)
        else:
            self.abort()
        if sink is not None:
            sink.response_done()

    def _check_timeout(self, timeout: float) -> None:
        self._timer = None
        if self.sink is None or self.tunnel:
            return
        idle = self.loop.time() - self.last_activity
        if idle < timeout or not self.sent_all:  # a slow upload is the client's time, not the upstream's
            wait = timeout - idle if idle < timeout else timeout
            self._timer = self.loop.call_later(wait, self._check_timeout, timeout)
            return
        sink = self.sink
        self.abort()
        sink.upstream_failed("timeout", f"no answer from upstream within {timeout:g}s")

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class UpstreamPool:
    """Keep-alive connections to one upstream address, bounded in total and when idle.

    ``take_idle`` is the fast path (no await). When ``max_total`` connections are busy, callers
    of ``connect`` wait their turn instead of opening more.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        loop: asyncio.AbstractEventLoop,
        max_idle: int = 64,
        max_total: int = 1024,
        connect_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.loop = loop
        self.max_idle = max_idle
        self.max_total = max_total
        self.connect_timeout = connect_timeout
        self.idle: collections.deque[UpstreamConnection] = collections.deque()
        self.total = 0
        self.opened = 0
        """Connections ever opened (tests read it to see reuse)."""
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._members: set[UpstreamConnection] = set()

    def take_idle(self) -> UpstreamConnection | None:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    async def connect(self) -> UpstreamConnection:
        """A new connection (or an idle one freed while we waited). Raises OSError/TimeoutError."""
        while self.total >= self.max_total:
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            await waiter
            conn = self.take_idle()
            if conn is not None:
                return conn
        self.total += 1
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await self.loop.create_connection(
                    lambda: UpstreamConnection(self), self.host, self.port
                )
        except BaseException:
            self.total -= 1
            self._wake()
            raise
        self._members.add(conn)
        self.opened += 1
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        if conn.closed:
            return
        if len(self.idle) >= self.max_idle and not self._waiters:
            conn.abort()
            return
        self.idle.append(conn)
        self._wake()

    def lost(self, conn: UpstreamConnection) -> None:
        if conn in self._members:
            self._members.discard(conn)
            self.total -= 1
            self._wake()
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for conn in list(self._members):
            conn.abort()
        self.idle.clear()
