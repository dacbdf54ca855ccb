"""HTTP/1.1 pieces of the reverse proxy that need no socket: header rules and canned replies.

Kept apart from the connection code so the rules (what is hop-by-hop, what is malformed, what
the upstream is told about the client) can be read and tested in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
"""Headers that describe one connection, not the message (RFC 9110 section 7.6.1)."""

REWRITTEN = frozenset({b"content-length", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-for"})
"""Request headers the proxy writes itself (framing and forwarding facts)."""


class Malformed(Exception):
    """A request we refuse to forward. ``status`` is what the client gets (400, 413, 431, ...)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def valid_token(name: bytes) -> bool:
    """A header field name must be a non-empty RFC 9110 token (llhttp checks too; belt and braces).

    One regular-expression match, not a Python loop over the bytes: this runs for every header.
    """
    return _TOKEN.fullmatch(name) is not None


def connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    """Lower-case option names listed in every ``Connection`` header."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            for part in value.split(b","):
                part = part.strip().lower()
                if part:
                    tokens.add(part)
    return tokens


@dataclass(slots=True)
class RequestShape:
    """What the header checks learned about a request's framing."""

    chunked: bool = False
    content_length: int | None = None
    websocket: bool = False
    host: bytes = b""


def check_request_headers(
    headers: list[tuple[bytes, bytes]], *, http_version: str, max_body: int
) -> RequestShape:
    """Reject what llhttp lets through but a smuggler or a confused upstream could exploit.

    llhttp already refuses Content-Length together with Transfer-Encoding, duplicate
    Content-Length, obs-fold, bad chunk sizes and bad header names. This adds: one Host (and a
    Host on HTTP/1.1), Transfer-Encoding only as plain ``chunked`` and never on HTTP/1.0, a sane
    Content-Length, and the body size limit.
    """
    shape = RequestShape()
    hosts = 0
    upgrade = b""
    for name, value in headers:
        if name == b"host":
            hosts += 1
            shape.host = value
        elif name == b"transfer-encoding":
            if shape.chunked or value.strip().lower() != b"chunked":
                raise Malformed(400, "unsupported Transfer-Encoding")
            shape.chunked = True
        elif name == b"content-length":
            text = value.strip()
            if not text.isdigit() or len(text) > 18:
                raise Malformed(400, "bad Content-Length")
            length = int(text)
            if shape.content_length is not None and shape.content_length != length:
                raise Malformed(400, "conflicting Content-Length")
            shape.content_length = length
        elif name == b"upgrade":
            upgrade = value.strip().lower()
    if hosts > 1:
        raise Malformed(400, "more than one Host header")
    if hosts == 0 and http_version == "1.1":
        raise Malformed(400, "missing Host header")
    if shape.chunked and shape.content_length is not None:
        raise Malformed(400, "both Content-Length and Transfer-Encoding")
    if shape.chunked and http_version == "1.0":
        raise Malformed(400, "Transfer-Encoding on HTTP/1.0")
    if shape.content_length is not None and shape.content_length > max_body:
        raise Malformed(413, "body larger than the limit")
    shape.websocket = upgrade == b"websocket" and b"upgrade" in connection_tokens(headers)
    return shape


def upstream_request_head(
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    *,
    peer: str,
    scheme: str,
    shape: RequestShape,
) -> bytes:
    """The request line and headers sent to the upstream.

    Hop-by-hop headers and any header named in ``Connection`` are dropped (``Upgrade`` survives
    for a WebSocket handshake); ``X-Forwarded-For`` gets the client appended to any chain it
    brought; ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` are set from what we saw. The body is
    framed by us: ``Content-Length`` as the client declared it, or chunked.
    """
    named = connection_tokens(headers)
    chain: list[bytes] = []
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        if name in HOP_BY_HOP or name in REWRITTEN or name in named:
            if name == b"x-forwarded-for":
                chain.append(value.strip())
            continue
        lines += (name, b": ", value, b"\r\n")
    chain.append(peer.encode("latin-1"))
    lines += (b"x-forwarded-for: ", b", ".join(c for c in chain if c), b"\r\n")
    lines += (b"x-forwarded-proto: ", scheme.encode("ascii"), b"\r\n")
    if shape.host:
        lines += (b"x-forwarded-host: ", shape.host, b"\r\n")
    if shape.websocket:
        lines.append(b"connection: upgrade\r\nupgrade: websocket\r\n")
    elif shape.chunked:
        lines.append(b"transfer-encoding: chunked\r\n")
    elif shape.content_length is not None:
        lines += (b"content-length: ", str(shape.content_length).encode("ascii"), b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def response_headers(headers: list[tuple[bytes, bytes]], *, switching: bool) -> tuple[list[bytes], bool]:
    """Upstream response headers fit for the client, and whether a Content-Length was among them.

    Hop-by-hop headers are dropped, except ``Connection``/``Upgrade`` on a 101 (WebSocket)
    answer, which the client needs to see.
    """
    named = connection_tokens(headers)
    lines: list[bytes] = []
    has_length = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length":
            has_length = True
        elif switching and lower in (b"connection", b"upgrade"):
            pass
        elif lower in HOP_BY_HOP or lower in named:
            continue
        lines += (name, b": ", value, b"\r\n")
    return lines, has_length


_STATUS_TEXT = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def status_text(status: int) -> bytes:
    return _STATUS_TEXT.get(status, "Unknown").encode("ascii")


def simple_response(
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"text/plain; charset=utf-8",
    extra: list[tuple[bytes, bytes]] | None = None,
    close: bool = False,
    head: bool = False,
) -> bytes:
    """A complete small response (our own errors and the engine's refusals)."""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, status_text(status))]
    for name, value in extra or ():
        if name.lower() not in (b"content-length", b"connection", b"content-type"):
            lines += (name, b": ", value, b"\r\n")
    lines += (b"content-type: ", content_type, b"\r\n")
    lines.append(b"content-length: %d\r\n" % len(body))
    if close:
        lines.append(b"connection: close\r\n")
    lines.append(b"\r\n")
    if not head:
        lines.append(body)
    return b"".join(lines)


def error_response(status: int, message: str, *, close: bool = True, head: bool = False) -> bytes:
    """The proxy's own error page: plain text, no request-derived content."""
    body = f"{status} {status_text(status).decode()}: {message}\n".encode()
    return simple_response(status, body, close=close, head=head)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
