"""The forward-auth decision service: nginx, HAProxy, Caddy, Traefik and Envoy ask, we answer.

For every request the proxy receives, it sends us a description of it (see
:mod:`.authz_describe`); we decide with the same engine and policy as the middleware and answer:

- allow: ``200``, empty body, ``X-ScrapeWarden-Score`` and ``X-ScrapeWarden-Action`` for the
  proxy's access log;
- throttle: ``429`` with ``Retry-After``; block: ``403``; challenge: ``403`` with the challenge
  page for browsers (``Accept: text/html``), or a ``302`` to ``challenge_url`` when one is
  configured. Bodies are the same pages the middleware sends (:func:`.responses.reply_for`, the
  challenge page), so a proxy that passes them on (Caddy, Traefik, Envoy, our HAProxy Lua
  action) shows people the same page.

The proxy also routes ``/.sw/`` to us (not as an auth request: the request itself), and we
answer the challenge page, its scripts and ``POST /.sw/verify`` there (:mod:`.own_pages`). A
valid clearance cookie on an auth request tells the engine the client passed a challenge.

nginx is the exception: ``auth_request`` accepts only 2xx, 401 and 403 from us (anything else
becomes a 500) and drops our body. For nginx-format requests every refusal is therefore a bare
``403`` carrying ``X-ScrapeWarden-Reference``; nginx's ``error_page 403 = @scrapewarden`` then
fetches the real reply (status, ``Retry-After`` or ``Location``, body) from
``/.scrapewarden/reply`` by that reference. Replies wait there for a few seconds, once.

A blocked record request is never answered with a decoy here: to a forward-auth proxy any 2xx
means "let it through to the site", so a decoy would serve the real record.

The HTTP server is a raw asyncio protocol on httptools: for requests this small it answers
1.5-2x as many per second as aiohttp's low-level server with the same service (see
``docs/deploy/README.md``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import signal
import time
from collections import OrderedDict, deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httptools

from ..core.decision import Action, Decision
from ..core.facts import RequestFacts
from ..core.fingerprint import fingerprint
from ..core.http_facts import facts_from_http
from ..warden import Warden
from .authz_cache import AssetDecisionCache
from .authz_describe import DEFAULT_ENVOY_PREFIX, FORMATS, Described, describe, direct
from .own_pages import MAX_FORM, OWN_PREFIX, Client, challenge_page, client_of, header, own_reply
from .responses import new_reference, refusal, reply_for, wants_html

log = logging.getLogger("scrapewarden.authz")

DEFAULT_TRUSTED_HOPS: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
"""Who may describe requests to us when nothing else is configured: the proxy on this machine.

This is the *proxy-to-authz* hop only. It decides whether we believe the description headers
(``X-Real-IP``, ``X-Forwarded-For``...) at all. Whether the client's own forwarding chain is
believed beyond that is the policy's ``network.trusted_proxies`` (e.g. a CDN in front of nginx).
"""

REPLY_PATH = "/.scrapewarden/reply"
HEALTH_PATH = "/healthz"
REPLY_SECONDS = 30.0
MAX_STORED_REPLIES = 10_000
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 200
LOG_EVERY = 100
"""A misconfigured proxy sends every request badly; log the first and then every 100th."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    delay: float = 0.0
    """Seconds to hold the answer (the policy's tarpit for blocks)."""


@dataclass(slots=True)
class AuthzConfig:
    format: str = "auto"
    trusted_hops: tuple[str, ...] = DEFAULT_TRUSTED_HOPS
    """CIDRs allowed to describe requests, in addition to the policy's ``network.trusted_proxies``."""
    challenge_url: str = ""
    """When set, challenges are a 302 to this address (``?next=`` the original path and query)
    instead of the challenge page in place."""
    envoy_prefix: str = DEFAULT_ENVOY_PREFIX
    cache_seconds: float = 5.0
    cache_uses: int = 8
    cache_addresses: int = 50_000


@dataclass(slots=True)
class AuthzStats:
    requests: int = 0
    allowed: int = 0
    refused: int = 0
    challenged: int = 0
    """Refusals answered with the challenge page."""
    own: int = 0
    """Requests for our own pages (``/.sw/...``), passed on by the proxy."""
    cached: int = 0
    bad_descriptions: int = 0
    untrusted_hops: int = 0
    errors: int = 0
    formats: dict[str, int] = field(default_factory=dict)


_STATUS_TEXT = {
    200: "OK",
    302: "Found",
    303: "See Other",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


class AuthzService:
    """Turns one forward-auth request into an :class:`Answer`. No sockets; see :func:`serve`."""

    def __init__(self, warden: Warden, config: AuthzConfig | None = None) -> None:
        self.warden = warden
        self.config = config = config or AuthzConfig()
        if config.format not in FORMATS:
            raise ValueError(f"unknown format {config.format!r}; one of {', '.join(FORMATS)}")
        policy = warden.policy
        # Explicit on purpose: the hop to us is trusted from the configured CIDRs plus the
        # policy's own proxies, and from nowhere else.
        self._hops = [
            ipaddress.ip_network(cidr, strict=False)
            for cidr in (*config.trusted_hops, *policy.network.trusted_proxies)
        ]
        self._hop_cache: dict[str, bool] = {}
        self.cache = AssetDecisionCache(
            seconds=config.cache_seconds, uses=config.cache_uses, max_addresses=config.cache_addresses
        )
        self._asset_prefixes = tuple(policy.client.asset_prefixes)
        self._asset_suffixes = tuple(policy.client.asset_suffixes)
        self._traps = frozenset(policy.traps.paths)
        self._replies: OrderedDict[str, tuple[float, Answer]] = OrderedDict()
        self.stats = AuthzStats()

    # -- trust -------------------------------------------------------------------------------------

    def trusted_hop(self, peer: str) -> bool:
        known = self._hop_cache.get(peer)
        if known is not None:
            return known
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            trusted = False
        else:
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            trusted = any(address in network for network in self._hops)
        if len(self._hop_cache) > 1024:
            self._hop_cache.clear()
        self._hop_cache[peer] = trusted
        return trusted

    # -- answering ---------------------------------------------------------------------------------

    def answer(self, *, hop_peer: str, method: str, target: str, headers: list[tuple[str, str]]) -> Answer:
        """The answer to one auth request. Never raises; a failure lets the request through."""
        try:
            path = target.partition("?")[0]
            if path == HEALTH_PATH:
                return self._health()
            if path == REPLY_PATH:
                return self._stored_reply(headers)
            described = self._described(hop_peer, method, target, headers)
            decision, facts = self._decision(described)
            return self._render(decision, described, facts)
        except Exception:
            return self._failed_open()

    @property
    def shared(self) -> bool:
        """True when decisions count on shared counters (Redis state): answer with
        :meth:`answer_async` then, so a request waits on Redis without blocking the others."""
        return self.warden.counters is not None

    async def answer_async(
        self, *, hop_peer: str, method: str, target: str, headers: list[tuple[str, str]]
    ) -> Answer:
        """:meth:`answer` with the request counted on the shared counters (at most their
        deadline, then on this process's own; see ``Warden.decide_async``). Never raises."""
        try:
            path = target.partition("?")[0]
            if path in (HEALTH_PATH, REPLY_PATH):
                return self.answer(hop_peer=hop_peer, method=method, target=target, headers=headers)
            described = self._described(hop_peer, method, target, headers)
            decision, facts = await self._decision_async(described)
            return self._render(decision, described, facts)
        except Exception:
            return self._failed_open()

    def _failed_open(self) -> Answer:
        # A bug here must not take the site down: fail open, loudly.
        self.stats.errors += 1
        log.exception("authz: deciding failed; letting the request through")
        return Answer(200, [("X-ScrapeWarden-Action", "error")])

    def _described(
        self, hop_peer: str, method: str, target: str, headers: list[tuple[str, str]]
    ) -> Described:
        """The request the proxy describes, with the trust and description problems counted."""
        stats = self.stats
        stats.requests += 1
        trusted = self.trusted_hop(hop_peer)
        if not trusted:
            stats.untrusted_hops += 1
            if stats.untrusted_hops % LOG_EVERY == 1:
                log.warning(
                    "authz: request from %s, which is not a trusted hop; its address headers are "
                    "ignored and it is decided as the client itself (see --trusted-hop)",
                    _printable(hop_peer),
                )
        described = describe(
            fmt=self.config.format,
            trusted_hop=trusted,
            hop_peer=hop_peer,
            method=method,
            target=target,
            raw_headers=headers,
            envoy_prefix=self.config.envoy_prefix,
        )
        stats.formats[described.format] = stats.formats.get(described.format, 0) + 1
        if described.problems:
            stats.bad_descriptions += 1
            if stats.bad_descriptions % LOG_EVERY == 1:
                log.warning(
                    "authz: bad %s description from %s: %s (decided anyway; check the proxy config)",
                    described.format,
                    _printable(hop_peer),
                    _printable("; ".join(described.problems)),
                )
        return described

    async def own_answer(
        self, *, hop_peer: str, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> Answer:
        """Our own page at ``target`` (one of ``/.sw/...``), for the client the proxy saw.

        ``body`` is the request body, None when it was larger than a form may be. Never raises.
        """
        self.stats.own += 1
        try:
            trusted = self.trusted_hop(hop_peer)
            described = direct(
                trusted_hop=trusted, hop_peer=hop_peer, method=method, target=target, raw_headers=headers
            )
            client = client_of(
                self.warden.policy,
                now=self.warden.clock(),
                peer=described.peer,
                headers=described.headers,
                scheme=described.scheme,
            )
            reply = await own_reply(
                self.warden.challenges,
                method=described.method,
                path=described.path,
                query=described.query,
                body=body,
                client=client,
            )
        except Exception:
            self.stats.errors += 1
            log.exception("authz: answering our own page failed")
            return Answer(500, [("Content-Type", "text/plain; charset=utf-8")], b"Something went wrong.\n")
        return Answer(reply.status, list(reply.headers), reply.body)

    def _decision(self, described: Described) -> tuple[Decision, RequestFacts]:
        facts, identity, cached = self._prepare(described)
        if cached is not None:
            return cached, facts
        decision = self.warden.decide(facts)
        self._remember(facts, identity, decision)
        return decision, facts

    async def _decision_async(self, described: Described) -> tuple[Decision, RequestFacts]:
        """:meth:`_decision` on the shared counters. A cached asset allow skips them too."""
        facts, identity, cached = self._prepare(described)
        if cached is not None:
            return cached, facts
        decision = await self.warden.decide_async(facts)
        self._remember(facts, identity, decision)
        return decision, facts

    def _prepare(self, described: Described) -> tuple[RequestFacts, str | None, Decision | None]:
        """(facts, the cache identity or None when not cacheable, a cached decision or None)."""
        warden = self.warden
        facts = facts_from_http(
            warden.policy,
            now=warden.clock(),
            peer=described.peer,
            method=described.method,
            path=described.path,
            query=described.query,
            headers=described.headers,
            scheme=described.scheme,
        )
        if described.problems:
            facts.malformed = (*facts.malformed, *described.problems)
        # A valid clearance cookie (bound to this network and user agent) tells the engine the
        # client passed a challenge, as Warden.decide_http does for the other doors.
        warden.read_clearance(facts)
        cache = self.cache
        if not (cache.enabled and self._cacheable(described)):
            return facts, None, None
        identity = facts.account_id or facts.session_id or fingerprint(facts)
        cached = cache.get(facts.ip, identity, facts.now)
        if cached is not None:
            self.stats.cached += 1
        return facts, identity, cached

    def _remember(self, facts: RequestFacts, identity: str | None, decision: Decision) -> None:
        if identity is not None:
            self.cache.put(facts.ip, identity, decision, facts.now)
        elif decision.action is not Action.ALLOW:
            self.cache.forget(facts.ip)

    def _cacheable(self, described: Described) -> bool:
        path = described.path
        if described.method not in ("GET", "HEAD") or described.problems or path in self._traps:
            return False
        if not (path.startswith(self._asset_prefixes) or path.endswith(self._asset_suffixes)):
            return False
        resources = getattr(self.warden.engine, "resources", None)
        return not resources or resources.match(described.method, path, described.query) is None

    def _render(self, decision: Decision, described: Described, facts: RequestFacts) -> Answer:
        stats = self.stats
        score = f"{decision.score:.0f}"
        if decision.effective is Action.ALLOW:
            stats.allowed += 1
            headers = [("X-ScrapeWarden-Score", score), ("X-ScrapeWarden-Action", decision.action.label)]
            if not decision.enforced:
                headers.append(("X-ScrapeWarden-Mode", "observe"))
            return Answer(200, headers)
        stats.refused += 1
        actions = self.warden.policy.actions
        accept = described.header("accept")
        if decision.action is Action.CHALLENGE and self.config.challenge_url:
            answer = self._challenge_redirect(described)
        elif decision.action is Action.CHALLENGE and wants_html(accept):
            # A browser gets the page that lets it through (its answer comes back to us via the
            # proxy's /.sw/ route); scripts keep the JSON refusal.
            client = Client(
                ip=facts.ip,
                user_agent=facts.user_agent,
                https=facts.extra.get("scheme") == "https",
                lang=header(described.headers, "accept-language") or "en",
            )
            target = described.path + ("?" + described.query if described.query else "")
            page = challenge_page(self.warden.challenges, decision, target=target, client=client)
            stats.challenged += 1
            answer = Answer(page.status, list(page.headers), page.body)
        else:
            reply = reply_for(
                decision, accept=accept, help_url=actions.help_url, retry_after=actions.throttle_retry_after
            )
            if reply is None or reply.status < 400:
                # A decoy (200) would tell the proxy to serve the real record: refuse plainly.
                reply = refusal(
                    decision,
                    accept=accept,
                    help_url=actions.help_url,
                    retry_after=actions.throttle_retry_after,
                )
            answer = Answer(reply.status, list(reply.headers), reply.body)
        extra = [("X-ScrapeWarden-Score", score), ("X-ScrapeWarden-Action", decision.action.label)]
        delay = decision.tarpit_seconds if decision.action is Action.BLOCK else 0.0
        answer = Answer(answer.status, answer.headers + extra, answer.body, delay)
        if described.format == "nginx":
            return self._for_nginx(answer)
        return answer

    def _challenge_redirect(self, described: Described) -> Answer:
        url = self.config.challenge_url
        # Only the original path and query go along, percent-encoded: never a host, so the
        # challenge page cannot be turned into an open redirect by what the client asked for.
        back = described.path + ("?" + described.query if described.query else "")
        location = url + ("&" if "?" in url else "?") + "next=" + quote(back, safe="")
        reference = new_reference()
        body = b"A quick check is needed; continue at the address in the Location header.\n"
        headers = [
            ("Location", location),
            ("Cache-Control", "no-store"),
            ("X-ScrapeWarden-Reference", reference),
            ("Content-Type", "text/plain; charset=utf-8"),
        ]
        return Answer(302, headers, body)

    # -- nginx: the reply fetched after the fact ------------------------------------------------------

    def _for_nginx(self, answer: Answer) -> Answer:
        reference = next((v for n, v in answer.headers if n == "X-ScrapeWarden-Reference"), new_reference())
        now = time.monotonic()
        replies = self._replies
        while replies and (len(replies) >= MAX_STORED_REPLIES or next(iter(replies.values()))[0] < now):
            replies.popitem(last=False)
        replies[reference] = (now + REPLY_SECONDS, answer)
        keep = ("X-ScrapeWarden-Score", "X-ScrapeWarden-Action", "X-ScrapeWarden-Reference")
        headers = [(n, v) for n, v in answer.headers if n in keep]
        headers.append(("X-ScrapeWarden-Status", str(answer.status)))
        return Answer(403, headers, b"", answer.delay)

    def _stored_reply(self, headers: list[tuple[str, str]]) -> Answer:
        reference = next((v.strip() for n, v in headers if n == "x-scrapewarden-reference"), "")
        found = self._replies.pop(reference, None)
        if found is None or found[0] < time.monotonic():
            # Expired or never issued: the person still needs an explanation, not an error.
            decision = Decision(Action.BLOCK, 0.0)
            accept = next((v for n, v in headers if n == "accept"), None)
            reply = refusal(decision, accept=accept, help_url=self.warden.policy.actions.help_url)
            return Answer(403, list(reply.headers), reply.body)
        return found[1]

    def _health(self) -> Answer:
        body = json.dumps({"status": "ok", **_stats_dict(self.stats)}).encode()
        return Answer(200, [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body)


def _stats_dict(stats: AuthzStats) -> dict[str, object]:
    return {
        "requests": stats.requests,
        "allowed": stats.allowed,
        "refused": stats.refused,
        "challenged": stats.challenged,
        "own": stats.own,
        "cached": stats.cached,
        "bad_descriptions": stats.bad_descriptions,
        "untrusted_hops": stats.untrusted_hops,
        "errors": stats.errors,
        "formats": dict(stats.formats),
    }


def _printable(text: str) -> str:
    """Attacker-controlled text made safe for a log line: no control characters, bounded."""
    return text[:200].encode("unicode_escape", "replace").decode("ascii", "replace")


def encode_answer(answer: Answer, *, keep_alive: bool, head: bool = False) -> bytes:
    """The answer as HTTP/1.1 bytes."""
    reason = _STATUS_TEXT.get(answer.status, "")
    lines = [f"HTTP/1.1 {answer.status} {reason}"]
    body = answer.body
    for name, value in answer.headers:
        if name.lower() in ("content-length", "connection"):
            continue
        lines.append(f"{name}: {_header_value(value)}")
    lines.append(f"Content-Length: {len(body)}")
    if not keep_alive:
        lines.append("Connection: close")
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head_bytes if head else head_bytes + body


def _header_value(value: str) -> str:
    # Values we send may carry request-derived text (a Location with the original path is
    # percent-encoded already); never let a CR or LF split the response.
    return value.replace("\r", " ").replace("\n", " ")


# --- the server ----------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining, bodies ignored (auth requests have none)."""

    __slots__ = (
        "_body",
        "_body_over",
        "_closing",
        "_header_bytes",
        "_headers",
        "_loop",
        "_out",
        "_parser",
        "_peer",
        "_server",
        "_url",
        "transport",
    )

    def __init__(self, server: AuthzServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._header_bytes = 0
        self._body = bytearray()
        self._body_over = False
        self._peer = ""
        self._out: deque[list[object]] = deque()
        self._closing = False
        self.transport: asyncio.Transport | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade, _TooLarge) as exc:
            # httptools wraps exceptions raised in our callbacks; the cause tells them apart.
            too_large = isinstance(exc, _TooLarge) or isinstance(exc.__cause__ or exc.__context__, _TooLarge)
            self._fail(431 if too_large else 400)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self._body = bytearray()
        self._body_over = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_HEADER_BYTES:
            raise _TooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES or len(self._headers) >= MAX_HEADERS:
            raise _TooLarge
        self._headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        # Only our answer form (POST /.sw/verify) has a body worth reading; anything past the
        # form limit is dropped unread and the request refused as too large.
        if self._body_over or len(self._body) + len(body) > MAX_FORM:
            self._body_over = True
            self._body = bytearray()
        else:
            self._body += body

    def on_message_complete(self) -> None:
        parser = self._parser
        method = parser.get_method().decode("latin-1")
        keep_alive = parser.should_keep_alive() and not self._server.stopping
        target = self._url.decode("latin-1")
        if target.startswith(OWN_PREFIX):
            # The proxy's /.sw/ route: not an auth request but the request itself.
            self._own(method, target, keep_alive)
            return
        service = self._server.service
        if service.shared:
            # Shared counters: the decision waits on Redis (at most its deadline), so it is a
            # task; answers still go out in request order.
            coroutine = service.answer_async(
                hop_peer=self._peer, method=method, target=target, headers=self._headers
            )
            self._later(coroutine, method, keep_alive)
            return
        answer = service.answer(hop_peer=self._peer, method=method, target=target, headers=self._headers)
        self._send(
            encode_answer(answer, keep_alive=keep_alive, head=method == "HEAD"), answer.delay, keep_alive
        )

    def _own(self, method: str, target: str, keep_alive: bool) -> None:
        """Our own page: answered by a task (verifying may wait on the network), in order."""
        coroutine = self._server.service.own_answer(
            hop_peer=self._peer,
            method=method,
            target=target,
            headers=self._headers,
            body=None if self._body_over else bytes(self._body),
        )
        self._later(coroutine, method, keep_alive)

    def _later(self, coroutine: Coroutine[Any, Any, Answer], method: str, keep_alive: bool) -> None:
        """Answer with what ``coroutine`` returns, in its place among this connection's
        answers (held back for the answer's tarpit ``delay``, if any)."""
        item: list[object] = [b"", False, keep_alive]
        self._out.append(item)
        task = self._loop.create_task(coroutine)
        tasks = self._server.tasks
        tasks.add(task)

        def done(finished: asyncio.Task[Answer]) -> None:
            tasks.discard(finished)
            if finished.cancelled():
                return
            answer = finished.result()
            item[0] = encode_answer(answer, keep_alive=keep_alive, head=method == "HEAD")
            if answer.delay > 0:
                self._loop.call_later(answer.delay, self._release, item)
            else:
                self._release(item)

        task.add_done_callback(done)

    # writing, in request order even when one answer is held back (tarpit, our own pages)

    def _send(self, data: bytes, delay: float, keep_alive: bool) -> None:
        item: list[object] = [data, delay <= 0, keep_alive]
        self._out.append(item)
        if delay > 0:
            self._loop.call_later(delay, self._release, item)
        self._flush()

    def _release(self, item: list[object]) -> None:
        item[1] = True
        self._flush()

    def _flush(self) -> None:
        out = self._out
        while out and out[0][1]:
            data, _, keep_alive = out.popleft()
            transport = self.transport
            if transport is None or self._closing:
                out.clear()
                return
            transport.write(data)  # type: ignore[arg-type]
            if not keep_alive:
                self._closing = True
                transport.close()
                out.clear()
                return

    def _fail(self, status: int) -> None:
        self._server.service.stats.bad_descriptions += 1
        answer = Answer(
            status, [("Content-Type", "text/plain")], f"{status} {_STATUS_TEXT[status]}\n".encode()
        )
        self._send(encode_answer(answer, keep_alive=False), 0.0, False)

    def close_if_idle(self) -> None:
        if not self._out and self.transport is not None:
            self._closing = True
            self.transport.close()


class _TooLarge(Exception):
    pass


class AuthzServer:
    """Owns the listening sockets and the open connections."""

    def __init__(self, service: AuthzService) -> None:
        self.service = service
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[Answer]] = set()
        """Answers to our own pages in progress (a reference keeps each task alive)."""
        self.stopping = False
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True, backlog=1024
        )
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let answers being written go out, then close what is left."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + grace
        while True:
            for connection in list(self.connections):
                connection.close_if_idle()
            if not self.connections or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {text!r}")
    return host, int(port)


async def serve(
    service: AuthzService,
    host: str,
    port: int,
    *,
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully and flush the store."""
    server = AuthzServer(service)
    bound = await server.start(host, port)
    log.info("scrapewarden authz listening on %s:%d (format %s)", bound[0], bound[1], service.config.format)
    print(f"scrapewarden authz listening on http://{_join(bound)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in stop_signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in stop_signals:
            loop.remove_signal_handler(sig)
        await server.stop()
        service.warden.close()
        log.info("scrapewarden authz stopped: %s", _stats_dict(service.stats))


def _join(bound: tuple[str, int]) -> str:
    host, port = bound
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
