"""The reverse proxy: put scrapewarden in front of any site, whatever it is written in.

    scrapewarden proxy --upstream http://127.0.0.1:8000 --listen 127.0.0.1:8080

Data path. Measured on loopback (2 cores, nginx serving 1 KB upstream, wrk -c64), a proxy built
on aiohttp's server and ClientSession forwarded ~7k req/s; asyncio protocols with httptools
parsing on both sides and pooled raw upstream connections forwarded ~29k req/s (~40k at -c16).
So this module is written as plain ``asyncio.Protocol`` callbacks (uvloop when available):
no task, no stream object and no copy per request beyond the header rewrite.

One client connection (:class:`ClientConnection`) handles its requests in order. For each:

1. llhttp parses the head; :func:`proxy_http.check_request_headers` adds the checks llhttp
   leaves out (smuggling, Host, sizes). Anything malformed gets a 400 (413/431 for sizes) and
   the connection is closed; the upstream never sees it;
2. the engine decides (``Warden.decide_http``); a refusal is answered with the same pages the
   middleware uses (:func:`responses.reply_for`), and a challenge to a browser (``Accept:
   text/html``) with the challenge page itself. Observe mode lets everything through;
3. the request goes to the upstream on a pooled keep-alive connection with hop-by-hop headers
   removed and ``X-Forwarded-For``/``-Proto``/``-Host`` set; bodies stream in both directions
   with flow control (a slow reader pauses the other side, nothing is collected in memory);
4. a WebSocket handshake is decided like any request; once the upstream answers 101 the two
   sockets are piped together.

scrapewarden's own pages (``/.sw/challenge``, its scripts, ``POST /.sw/verify``; see
:mod:`.own_pages`) are answered by the proxy and never forwarded. Answers to the challenge are
checked by the decider (``Decider.verify``), wherever it runs.

Upstream failures answer 502 (refused, reset, garbage) or 504 (connect or read timeout), each
with one log line. SIGTERM/SIGINT: stop accepting, finish in-flight requests for up to the grace
period. SIGHUP: re-read the policy; connections stay open, bans and counters carry over.

Several workers (``--workers N``) share one engine through a decider process; see
:mod:`scrapewarden.doors.proxy_decider` and :mod:`scrapewarden.doors.proxy_workers`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

import httptools

from ..core.decision import Action, Decision
from .own_pages import MAX_FORM, OWN_PATHS, Client, challenge_page, client_of, own_reply
from .proxy_decider import Decider
from .proxy_http import (
    LAST_CHUNK,
    Malformed,
    RequestShape,
    check_request_headers,
    chunk,
    error_response,
    response_headers,
    simple_response,
    status_text,
    upstream_request_head,
    valid_token,
)
from .proxy_upstream import UpstreamConnection, UpstreamPool
from .responses import Reply, reply_for, wants_html

log = logging.getLogger("scrapewarden.proxy")

HIGH_WATER = 256 * 1024
"""Request body bytes held while the decision or the upstream connection is pending."""

OWN_TARGETS = frozenset(path.encode("ascii") for path in OWN_PATHS)


@dataclass(slots=True)
class ProxySettings:
    upstream_host: str = "127.0.0.1"
    upstream_port: int = 8000
    scheme: str = "http"
    """What ``X-Forwarded-Proto`` says: ``https`` when a TLS terminator sits in front of us."""
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    max_body: int = 100 * 1024 * 1024
    header_timeout: float = 15.0
    """Seconds a client has to send a complete request head."""
    idle_timeout: float = 75.0
    """Seconds an idle keep-alive client connection is kept."""
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    """Seconds the upstream may stay silent while we wait for (the rest of) its answer."""
    pool_idle: int = 64
    pool_max: int = 1024
    grace: float = 10.0


@dataclass(slots=True)
class ProxyStats:
    requests: int = 0
    proxied: int = 0
    refused: int = 0
    """Answered from the engine's decision (429/403/decoy) without contacting the upstream."""
    challenged: int = 0
    """Of those, answered with the challenge page."""
    own: int = 0
    """Requests for scrapewarden's own pages (``/.sw/...``), answered here."""
    malformed: int = 0
    too_large: int = 0
    bad_gateway: int = 0
    gateway_timeout: int = 0
    websockets: int = 0
    malformed_reasons: collections.Counter[str] = field(default_factory=collections.Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "proxied": self.proxied,
            "refused": self.refused,
            "challenged": self.challenged,
            "own": self.own,
            "malformed": self.malformed,
            "too_large": self.too_large,
            "bad_gateway": self.bad_gateway,
            "gateway_timeout": self.gateway_timeout,
            "websockets": self.websockets,
            "malformed_reasons": dict(self.malformed_reasons),
        }


def _shown(text: bytes | str, limit: int = 200) -> str:
    """Attacker-controlled text made safe for one log line."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return repr(text[:limit])


class Exchange:
    """One request/response on a client connection."""

    __slots__ = (
        "body",
        "body_done",
        "body_size",
        "chunked_out",
        "close_after",
        "head_size",
        "headers",
        "keep_alive",
        "method",
        "own",
        "pending",
        "response_started",
        "shape",
        "target",
        "upstream",
        "version",
        "websocket_tail",
    )

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0
        """Bytes of header names and values so far (kept as a running total: O(1) per header)."""
        self.version = "1.1"
        self.keep_alive = True
        self.shape = RequestShape()
        self.body: list[bytes] = []
        self.pending = 0
        self.body_size = 0
        self.body_done = False
        self.upstream: UpstreamConnection | None = None
        self.response_started = False
        self.chunked_out = False
        self.close_after = False
        self.websocket_tail: bytearray | None = None
        self.own: bytes | None = None
        """The query string, when this is a request for one of our own pages (answered here)."""


class ClientConnection(asyncio.Protocol):
    """One client's connection: parse, decide, forward, relay. Also the upstream's :class:`Sink`."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self.settings = server.settings
        self.loop = server.loop
        self.stats = server.stats
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.exchanges: collections.deque[Exchange] = collections.deque()
        self.parsing: Exchange | None = None
        self.in_head = True
        self.head_bytes = 0
        self.dead = False
        self.tunnel: UpstreamConnection | None = None
        self.upgrading = False
        self.last_parsed: Exchange | None = None
        self.held_head = b""
        self.read_paused = 0
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio callbacks ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self)
        self._arm(self.settings.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.dead = True
        self._disarm()
        self.server.connections.discard(self)
        if self.tunnel is not None:
            self.tunnel.abort()
            self.tunnel = None
        for ex in self.exchanges:
            if ex.upstream is not None:
                # The client left mid-exchange: the upstream connection is in an unknown state.
                ex.upstream.abort()
                ex.upstream = None
        self.exchanges.clear()
        self.server.connection_closed()

    def pause_writing(self) -> None:
        # The client reads slower than the upstream sends: stop reading the upstream.
        upstream = self.tunnel or (self.exchanges[0].upstream if self.exchanges else None)
        if upstream is not None:
            upstream.pause_reading(True)

    def resume_writing(self) -> None:
        upstream = self.tunnel or (self.exchanges[0].upstream if self.exchanges else None)
        if upstream is not None:
            upstream.pause_reading(False)

    def eof_received(self) -> bool | None:
        # A client half-closing after its request still gets the answer.
        return bool(self.exchanges) or self.tunnel is not None

    def data_received(self, data: bytes) -> None:
        if self.dead:
            return
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        if self.upgrading:
            ex = self.exchanges[0] if self.exchanges else None
            if ex is not None and ex.websocket_tail is not None:
                ex.websocket_tail += data
                if len(ex.websocket_tail) > HIGH_WATER:
                    self._pause_reading(4)
            return
        if self.in_head:
            # llhttp gathers a header line before calling us: count raw bytes too, so one
            # endless header line cannot grow memory. on_headers_complete resets the count.
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._parser_upgrade(data, upgrade.args[0])
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, Malformed):
                self._reject(cause)
            else:
                log.error("proxy: internal error while reading a request", exc_info=cause)
                self._reject(Malformed(500, "internal error"))
        except httptools.HttpParserError as exc:
            self._reject(Malformed(400, str(exc) or type(exc).__name__))
            return
        if self.in_head and self.head_bytes > self.settings.max_header_bytes and not self.dead:
            self._reject(Malformed(431, "request head too large"))

    # -- httptools callbacks (request) ----------------------------------------------------------

    def on_message_begin(self) -> None:
        ex = Exchange()
        self.parsing = ex
        self.exchanges.append(ex)
        if len(self.exchanges) == 1:
            self._arm(self.settings.header_timeout)

    def on_url(self, url: bytes) -> None:
        ex = self.parsing
        assert ex is not None
        ex.target += url
        if len(ex.target) > self.settings.max_header_bytes:
            raise Malformed(431, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.parsing
        assert ex is not None
        if not self.in_head:
            return  # trailer fields of a chunked body: not forwarded (nor is any Trailer header)
        if not valid_token(name):
            raise Malformed(400, "invalid header name")
        ex.headers.append((name.lower(), value))
        ex.head_size += len(name) + len(value) + 4
        if len(ex.target) + ex.head_size > self.settings.max_header_bytes:
            raise Malformed(431, "request headers too large")
        if len(ex.headers) > self.settings.max_headers:
            raise Malformed(431, "too many request headers")

    def on_headers_complete(self) -> None:
        ex = self.parsing
        assert ex is not None
        self.in_head = False
        self.head_bytes = 0
        parser = self.parser
        ex.method = parser.get_method()
        if ex.method == b"CONNECT":
            raise Malformed(405, "CONNECT is not supported")
        ex.version = parser.get_http_version()
        ex.keep_alive = parser.should_keep_alive()
        ex.shape = check_request_headers(ex.headers, http_version=ex.version, max_body=self.settings.max_body)
        if ex.shape.content_length is None and not ex.shape.chunked:
            ex.body_done = True  # llhttp calls on_message_complete next; nothing to frame
        if ex is self.exchanges[0]:
            self._disarm()
            self._begin(ex)

    def on_body(self, body: bytes) -> None:
        ex = self.parsing
        assert ex is not None
        ex.body_size += len(body)
        if ex.body_size > self.settings.max_body:
            raise Malformed(413, "body larger than the limit")
        if ex.own is not None and ex.body_size > MAX_FORM:
            raise Malformed(413, "form larger than the limit")
        upstream = ex.upstream
        if upstream is not None:
            upstream.write(chunk(body) if ex.shape.chunked else body)
            return
        ex.body.append(body)
        ex.pending += len(body)
        if ex.pending > HIGH_WATER:
            self._pause_reading(2)

    def on_message_complete(self) -> None:
        ex = self.parsing
        assert ex is not None
        self.parsing = None
        self.last_parsed = ex
        self.in_head = True
        ex.body_done = True
        upstream = ex.upstream
        if upstream is not None:
            if ex.shape.chunked:
                upstream.write(LAST_CHUNK)
            upstream.request_sent()
        elif ex.own is not None and self.exchanges and self.exchanges[0] is ex:
            self._own_answer(ex)  # its body (the answer form) is complete now
        if len(self.exchanges) > 1:
            self._pause_reading(1)  # pipelining: one request ahead is enough

    # -- the exchange ---------------------------------------------------------------------------

    def _begin(self, ex: Exchange) -> None:
        self.stats.requests += 1
        try:
            url = httptools.parse_url(ex.target)
        except httptools.HttpParserInvalidURLError:
            self._reject(Malformed(400, "unparsable request target"))
            return
        path = url.path or b"/"
        query = url.query or b""
        # Absolute-form targets (``GET http://host/x``) go upstream in origin form.
        ex.target = path + b"?" + query if query else path
        if path in OWN_TARGETS:
            self._own_begin(ex, query)
            return
        try:
            result = self.server.decider.decide(
                self.peer,
                ex.method.decode("latin-1"),
                path.decode("latin-1"),
                query.decode("latin-1"),
                ex.headers,
                self.settings.scheme,
            )
        except Exception:
            log.exception("proxy: deciding failed; letting the request through")
            result = Decision(action=Action.ALLOW, score=0.0)
        if isinstance(result, Decision):
            self._decided(ex, result)
        else:
            result.add_done_callback(lambda future: self._decided(ex, future.result()))

    def _decided(self, ex: Exchange, decision: Decision) -> None:
        if self.dead:
            return
        if decision.action is Action.ALLOW or not decision.enforced:
            self._forward(ex)
            return
        raw_accept = next((v for n, v in ex.headers if n == b"accept"), None)
        accept = raw_accept.decode("latin-1") if raw_accept is not None else None
        decider = self.server.decider
        actions = decider.policy.actions
        reply: Reply | None
        if decision.action is Action.CHALLENGE and wants_html(accept) and not ex.shape.websocket:
            # A browser gets the page that lets it through; scripts keep the JSON refusal.
            try:
                reply = challenge_page(
                    decider.challenges, decision, target=ex.target.decode("latin-1"), client=self._client(ex)
                )
                self.stats.challenged += 1
            except Exception:
                log.exception("proxy: the challenge page failed; refusing plainly")
                reply = reply_for(decision, accept=None, help_url=actions.help_url)
        else:
            reply = reply_for(
                decision, accept=accept, help_url=actions.help_url, retry_after=actions.throttle_retry_after
            )
        if reply is None:
            self._forward(ex)
            return
        self.stats.refused += 1
        close = not ex.body_done or not ex.keep_alive or self.server.closing
        raw = _reply_bytes(reply, close=close, head=ex.method == b"HEAD")
        if decision.tarpit_seconds > 0 and reply.status != 429:
            self.loop.call_later(decision.tarpit_seconds, self._send_own, ex, raw, close)
        else:
            self._send_own(ex, raw, close)

    # -- our own pages -----------------------------------------------------------------------------

    def _client(self, ex: Exchange) -> Client:
        """The client as the engine sees it (trusted proxies applied): challenges bind to it."""
        return client_of(
            self.server.decider.policy,
            now=0.0,
            peer=self.peer,
            headers=ex.headers,
            scheme=self.settings.scheme,
        )

    def _own_begin(self, ex: Exchange, query: bytes) -> None:
        """A request for ``/.sw/...``: answered here once its (small) body is in."""
        self.stats.own += 1
        ex.own = query
        length = ex.shape.content_length
        if ex.body_size > MAX_FORM or (length is not None and length > MAX_FORM):
            # Not worth reading: answer now and close (the rest of the body is discarded).
            self._reject(Malformed(413, "form larger than the limit"))
            return
        if ex.body_done:
            self._own_answer(ex)

    def _own_answer(self, ex: Exchange) -> None:
        if ex.response_started:
            return
        ex.response_started = True  # answered exactly once, even if the parser calls again
        body, ex.body, ex.pending = b"".join(ex.body), [], 0
        self._resume_reading(2)
        path = ex.target.split(b"?", 1)[0].decode("latin-1")
        coroutine = own_reply(
            self.server.decider.challenges,
            method=ex.method.decode("latin-1"),
            path=path,
            query=(ex.own or b"").decode("latin-1"),
            body=body,
            client=self._client(ex),
            verify=self.server.decider.verify,  # where the engine is: spent once, recorded
        )
        task = self.loop.create_task(coroutine)
        self.server.tasks.add(task)
        task.add_done_callback(lambda done: self._own_done(ex, done))

    def _own_done(self, ex: Exchange, task: asyncio.Task[Reply]) -> None:
        self.server.tasks.discard(task)
        if task.cancelled() or self.dead or not self.exchanges or self.exchanges[0] is not ex:
            return
        close = not ex.keep_alive or self.server.closing
        self._send_own(ex, _reply_bytes(task.result(), close=close, head=ex.method == b"HEAD"), close)

    def _send_own(self, ex: Exchange, raw: bytes, close: bool) -> None:
        """Answer ``ex`` ourselves (refusal or error) and move on."""
        if self.dead or self.transport is None:
            return
        ex.response_started = True
        self.transport.write(raw)
        ex.close_after = close or ex.close_after
        self._exchange_done(ex)

    def _forward(self, ex: Exchange) -> None:
        head = upstream_request_head(
            ex.method, ex.target, ex.headers, peer=self.peer, scheme=self.settings.scheme, shape=ex.shape
        )
        if ex.shape.websocket:
            self.stats.websockets += 1
        conn = self.server.pool.take_idle()
        if conn is not None:
            self._attach(ex, conn, head)
        else:
            self.loop.create_task(self._connect(ex, head))

    async def _connect(self, ex: Exchange, head: bytes) -> None:
        try:
            conn = await self.server.pool.connect()
        except TimeoutError:
            self._upstream_error(ex, 504, "connecting to the upstream timed out")
            return
        except OSError as exc:
            self._upstream_error(ex, 502, f"upstream refused the connection ({exc.strerror or exc})")
            return
        if self.dead:
            self.server.pool.release(conn)
            return
        self._attach(ex, conn, head)

    def _attach(self, ex: Exchange, conn: UpstreamConnection, head: bytes) -> None:
        ex.upstream = conn
        conn.start(self, head, head_request=ex.method == b"HEAD", read_timeout=self.settings.read_timeout)
        if ex.body:
            body, ex.body, ex.pending = ex.body, [], 0
            conn.write(b"".join(chunk(piece) for piece in body) if ex.shape.chunked else b"".join(body))
        if ex.body_done:
            if ex.shape.chunked:
                conn.write(LAST_CHUNK)
            conn.request_sent()
        self._resume_reading(2)

    def _upstream_error(self, ex: Exchange, status: int, detail: str) -> None:
        if status == 504:
            self.stats.gateway_timeout += 1
        else:
            self.stats.bad_gateway += 1
        log.warning(
            "proxy: %d for %s %s from %s: %s",
            status,
            ex.method.decode("latin-1"),
            _shown(ex.target),
            self.peer,
            detail,
        )
        if self.dead or not self.exchanges or self.exchanges[0] is not ex:
            return
        ex.upstream = None
        if ex.response_started:
            assert self.transport is not None
            self.transport.abort()  # the client must see a truncated answer, not a short one
            return
        close = not ex.body_done or not ex.keep_alive or ex.shape.websocket
        self._send_own(ex, error_response(status, detail.split(":")[0], close=close), close)

    def _exchange_done(self, ex: Exchange) -> None:
        if self.exchanges and self.exchanges[0] is ex:
            self.exchanges.popleft()
        if self.transport is None or self.dead:
            return
        if ex.close_after or not ex.keep_alive or self.server.closing or self.upgrading:
            self.dead = True
            self.transport.close()
            return
        self._resume_reading(1)
        if self.exchanges:
            nxt = self.exchanges[0]
            if not self.in_head or self.parsing is not nxt:
                self._begin(nxt)  # its head is complete already
            else:
                self._arm(self.settings.header_timeout)
        else:
            self._arm(self.settings.idle_timeout)

    # -- Sink: the upstream's answer -----------------------------------------------------------

    def response_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        ex = self.exchanges[0]
        assert self.transport is not None
        ex.response_started = True
        switching = status == 101
        lines, has_length = response_headers(headers, switching=switching)
        if switching:
            if not ex.shape.websocket:
                self._upstream_error(ex, 502, "upstream switched protocols unasked")
                return
        elif ex.method == b"HEAD" or status in (204, 304):
            pass
        elif not has_length:
            if ex.version == "1.1":
                ex.chunked_out = True
                lines.append(b"transfer-encoding: chunked\r\n")
            else:
                ex.close_after = True  # HTTP/1.0 client: the end of the body is the end of the connection
        if not switching:
            if ex.close_after or not ex.keep_alive or self.server.closing or not ex.body_done:
                ex.close_after = True
                lines.append(b"connection: close\r\n")
            elif ex.version == "1.0":
                lines.append(b"connection: keep-alive\r\n")
        head = b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, reason or status_text(status), b"".join(lines))
        if switching:
            self.transport.write(head)
        else:
            # Held until the first body piece or the end of this read: one write (one syscall)
            # for a small answer, and a slow body still finds the head already sent.
            self.held_head = head
            self.loop.call_soon(self._flush_head)
        if switching:
            self.tunnel = ex.upstream
            self.upgrading = False
            tail = ex.websocket_tail
            if tail and self.tunnel is not None:
                self.tunnel.write(bytes(tail))
            ex.websocket_tail = None
            self._resume_reading(4)

    def interim_response(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        if self.transport is not None and self.exchanges and self.exchanges[0].version == "1.1":
            lines, _ = response_headers(headers, switching=False)
            self.transport.write(
                b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, reason or status_text(status), b"".join(lines))
            )

    def _flush_head(self) -> None:
        if self.held_head and self.transport is not None and not self.dead:
            self.transport.write(self.held_head)
        self.held_head = b""

    def response_body(self, data: bytes) -> None:
        if self.transport is None or not data:
            return
        if self.exchanges[0].chunked_out:
            data = chunk(data)
        if self.held_head:
            data = self.held_head + data
            self.held_head = b""
        self.transport.write(data)

    def response_done(self) -> None:
        if not self.exchanges:
            return
        ex = self.exchanges[0]
        ex.upstream = None
        if self.transport is not None:
            tail = LAST_CHUNK if ex.chunked_out else b""
            if self.held_head or tail:
                self.transport.write(self.held_head + tail)
            self.held_head = b""
        self.stats.proxied += 1
        self._exchange_done(ex)

    def tunnel_data(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def upstream_failed(self, kind: str, detail: str) -> None:
        if self.tunnel is not None or kind == "closed":
            self.tunnel = None
            if self.transport is not None:
                self.transport.close()
            return
        if not self.exchanges:
            return
        ex = self.exchanges[0]
        if kind == "timeout":
            self._upstream_error(ex, 504, detail)
        else:
            self._upstream_error(ex, 502, detail)

    def upstream_pause(self, paused: bool) -> None:
        if paused:
            self._pause_reading(8)
        else:
            self._resume_reading(8)

    # -- helpers ---------------------------------------------------------------------------------

    def _parser_upgrade(self, data: bytes, offset: int) -> None:
        ex = self.last_parsed
        if ex is None or ex not in self.exchanges:
            # Already answered (refused): the bytes after the handshake are not HTTP we can read.
            self.dead = True
            if self.transport is not None:
                self.transport.close()
            return
        if ex.shape.websocket:
            ex.websocket_tail = bytearray(data[offset:])
            self.upgrading = True
            return
        # An upgrade we do not pass (h2c and friends): the request was forwarded without its
        # Upgrade header; whatever follows is the next request, for a fresh parser.
        self.parser = httptools.HttpRequestParser(self)
        if offset < len(data):
            self.data_received(data[offset:])

    def _reject(self, problem: Malformed) -> None:
        if self.dead:
            # Already answered and closing (a refusal made inside a parser callback lets the
            # parser run on over the rest of this read, which may find the same problem again).
            return
        if problem.status == 413:
            self.stats.too_large += 1
        else:
            self.stats.malformed += 1
            self.stats.malformed_reasons[problem.reason[:60]] += 1
        log.info("proxy: %d to %s: %s", problem.status, self.peer, _shown(problem.reason))
        self.dead = True
        self._disarm()
        head = False
        for ex in self.exchanges:
            if ex.upstream is not None:
                ex.upstream.abort()
                ex.upstream = None
        if self.exchanges:
            first = self.exchanges[0]
            head = first.method == b"HEAD"
            if first.response_started:
                if self.transport is not None:
                    self.transport.abort()
                return
        if self.transport is not None:
            self.transport.write(error_response(problem.status, problem.reason, head=head))
            self._linger()

    def _linger(self) -> None:
        """Close after an error without resetting: the client may still be sending, and closing
        with unread data makes the kernel send a reset that can destroy our answer in flight.
        So: send our answer and a FIN, discard whatever still comes, close a moment later."""
        transport = self.transport
        if transport is None:
            return
        if transport.can_write_eof():
            transport.write_eof()
            self.read_paused = 0
            transport.resume_reading()
            self.loop.call_later(2.0, transport.close)
        else:
            transport.close()

    def _pause_reading(self, reason: int) -> None:
        if not self.read_paused and self.transport is not None:
            self.transport.pause_reading()
        self.read_paused |= reason

    def _resume_reading(self, reason: int) -> None:
        if not self.read_paused & reason:
            return
        self.read_paused &= ~reason
        if not self.read_paused and self.transport is not None and not self.dead:
            self.transport.resume_reading()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.dead or self.transport is None:
            return
        if self.parsing is not None and self.in_head:
            self.stats.malformed_reasons["request head timeout"] += 1
            self.dead = True
            self.transport.write(error_response(408, "request head not received in time"))
            self.transport.close()
        elif not self.exchanges:
            self.dead = True
            self.transport.close()  # idle keep-alive connection

    def shutdown(self) -> None:
        """Stop after the exchange in flight (if any)."""
        if self.transport is None or self.dead:
            return
        if not self.exchanges and self.tunnel is None:
            self.dead = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _reply_bytes(reply: Reply, *, close: bool, head: bool) -> bytes:
    """A door :class:`Reply` (refusal, challenge page, own page) as HTTP/1.1 bytes."""
    content_type = next((v for n, v in reply.headers if n.lower() == "content-type"), "text/plain")
    return simple_response(
        reply.status,
        reply.body,
        content_type=content_type.encode("latin-1"),
        extra=[(n.encode("latin-1"), v.encode("latin-1")) for n, v in reply.headers],
        close=close,
        head=head,
    )


class ProxyServer:
    """Listens, owns the upstream pool and the decider, and shuts down gracefully."""

    def __init__(self, settings: ProxySettings, decider: Decider, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.decider = decider
        self.loop = loop
        self.stats = ProxyStats()
        self.pool = UpstreamPool(
            settings.upstream_host,
            settings.upstream_port,
            loop=loop,
            max_idle=settings.pool_idle,
            max_total=settings.pool_max,
            connect_timeout=settings.connect_timeout,
        )
        self.connections: set[ClientConnection] = set()
        self.tasks: set[asyncio.Task[Reply]] = set()
        """Answers to ``/.sw/verify`` being checked (a reference keeps each task alive)."""
        self.closing = False
        self._server: asyncio.AbstractServer | None = None
        self._drained: asyncio.Event | None = None

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        sock: socket.socket | None = None,
        reuse_port: bool = False,
    ) -> tuple[str, int]:
        if sock is not None:
            self._server = await self.loop.create_server(
                lambda: ClientConnection(self), sock=sock, backlog=2048
            )
        else:
            self._server = await self.loop.create_server(
                lambda: ClientConnection(self), host, port, reuse_port=reuse_port or None, backlog=2048
            )
        name = self._server.sockets[0].getsockname()
        return name[0], name[1]

    def connection_closed(self) -> None:
        if self.closing and not self.connections and self._drained is not None:
            self._drained.set()

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight exchanges finish for up to ``grace`` seconds, then cut."""
        grace = self.settings.grace if grace is None else grace
        self.closing = True
        if self._server is not None:
            self._server.close()
        self._drained = asyncio.Event()
        for conn in list(self.connections):
            conn.shutdown()
        if self.connections:
            try:
                async with asyncio.timeout(grace):
                    await self._drained.wait()
            except TimeoutError:
                log.warning(
                    "proxy: %d connections still busy after %gs; closing them", len(self.connections), grace
                )
                for conn in list(self.connections):
                    conn.abort()
        self.pool.close()
        log.info("proxy stopped: %s", self.stats.as_dict())
