"""Raw HTTP request -> :class:`RequestFacts`.

This runs on every request a door sees, so it is written for speed: one pass over the
headers, string splits instead of regular expressions, and cached address parsing. It never
raises on hostile input; anything odd is recorded in ``RequestFacts.malformed`` so the engine
can score it.

Client address: the socket peer is the client unless the peer is one of the policy's
``network.trusted_proxies``. Then the configured forwarding header (``X-Forwarded-For`` style,
or ``Forwarded`` when the header name is ``forwarded``) is walked from the right, skipping
further trusted proxies; the first untrusted address is the client. A value that is not an
address makes us fall back to the peer: a proxy that we trust sent something we cannot
read, so we believe only what we saw ourselves.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import unquote_to_bytes

import radix

from .facts import RequestFacts
from .policy import Policy

MAX_HEADERS = 100
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 8 * 1024
MAX_PATH = 16 * 1024
MAX_QUERY = 16 * 1024
MAX_METHOD = 32
MAX_FORWARDED_HOPS = 64
"""A forwarding chain longer than this is not a real proxy chain; we stop walking it."""

UNKNOWN_IP = "0.0.0.0"
"""Stand-in client address when even the socket peer is not an address."""

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HeaderItem = tuple[bytes | str, bytes | str]


# --- addresses ---------------------------------------------------------------------------


def _is_plain_ipv4(text: str) -> bool:
    """Dotted-quad IPv4 already in canonical form: the common case, checked without ipaddress."""
    parts = text.split(".")
    if len(parts) != 4 or not text.isascii():
        return False
    for part in parts:
        if not part.isdigit() or len(part) > 3 or (part[0] == "0" and len(part) > 1) or int(part) > 255:
            return False
    return True


@lru_cache(maxsize=8192)
def normalise_ip(text: str) -> str | None:
    """Canonical form of an IP address, or None if ``text`` is not one.

    IPv4-mapped IPv6 becomes IPv4, IPv6 is lower-case and compressed, zone ids (``%eth0``) are
    dropped. Cached: a busy site sees the same few thousand addresses over and over.
    """
    if not text or len(text) > 64 or not text.isascii():
        return None
    if _is_plain_ipv4(text):
        return text
    if "%" in text:
        text = text.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _strip_port(token: str) -> str:
    """Address part of ``[v6]:port``, ``[v6]``, ``v4:port``; other text unchanged.

    Ports and brackets are not standard in X-Forwarded-For but some proxies add them, and
    RFC 7239 ``Forwarded`` uses exactly these forms, so both headers accept them.
    """
    if token.startswith("["):
        end = token.find("]")
        if end == -1:
            return token
        rest = token[end + 1 :]
        if rest and not (rest[0] == ":" and rest[1:].isdigit()):
            return token
        return token[1:end]
    if token.count(":") == 1:
        host, _, port = token.partition(":")
        if port.isdigit():
            return host
    return token


# What a header means to us; the header loop finds it with one dict look-up per header.
_USER_AGENT, _CLIENT_IP, _COOKIE, _ACCOUNT, _CREATED, _API_KEY, _PROTO = range(7)

_NO_HEADER = "UNSET"
"""Stands for "not configured": upper-case, so it never equals a lower-cased header name."""


def _header_name(configured: str) -> str:
    return configured.strip().lower() or _NO_HEADER


class _Compiled:
    """What the per-request code needs from a policy, parsed once."""

    __slots__ = (
        "account_cookie",
        "account_created_header",
        "account_header",
        "api_key_header",
        "forwarded_style",
        "ip_header",
        "policy",
        "roles",
        "session_cookie",
        "trusted",
        "trusted_tree",
    )

    def __init__(self, policy: Policy) -> None:
        # Holding the policy keeps its id() from being reused while this entry exists.
        self.policy = policy
        self.trusted: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in policy.network.trusted_proxies
        )
        # A longest-prefix match in a radix tree costs the same for every address, so unlike a
        # per-address cache it does not thrash when a site sees more clients than it holds.
        self.trusted_tree = radix.Radix()
        for network in self.trusted:
            self.trusted_tree.add(str(network))
        self.ip_header = _header_name(policy.network.client_ip_header)
        self.forwarded_style = self.ip_header == "forwarded"
        identity = policy.identity
        self.account_header = _header_name(identity.account_header)
        self.account_cookie = identity.account_cookie.strip()
        self.account_created_header = _header_name(identity.account_created_header)
        self.session_cookie = identity.session_cookie.strip()
        self.api_key_header = _header_name(identity.api_key_header)
        # Filled lowest priority first: when an operator configures one name for two things,
        # the later (higher) entry wins, as the first matching branch of an if-chain would.
        roles: dict[str, int] = {"x-forwarded-proto": _PROTO}
        for name, role in (
            (self.api_key_header, _API_KEY),
            (self.account_created_header, _CREATED),
            (self.account_header, _ACCOUNT),
            ("cookie", _COOKIE),
            (self.ip_header, _CLIENT_IP),
            ("user-agent", _USER_AGENT),
        ):
            if name != _NO_HEADER:
                roles[name] = role
        self.roles = roles

    def is_trusted(self, ip: str) -> bool:
        """Is this (normalised) address one of our proxies?"""
        if not self.trusted:
            return False
        try:
            return self.trusted_tree.search_best(ip) is not None
        except (ValueError, TypeError):
            return False


_COMPILED: dict[int, _Compiled] = {}
_MAX_COMPILED = 32


def _compiled(policy: Policy) -> _Compiled:
    entry = _COMPILED.get(id(policy))
    if entry is not None and entry.policy is policy:
        return entry
    entry = _Compiled(policy)
    if len(_COMPILED) >= _MAX_COMPILED:
        # A process normally holds one or two policies; many means policies are being built
        # per request somewhere. Start over rather than grow without bound.
        _COMPILED.clear()
    _COMPILED[id(policy)] = entry
    return entry


def _forwarded_for(values: list[str]) -> list[str] | None:
    """``for=`` tokens of RFC 7239 ``Forwarded`` values, left to right; None if unreadable."""
    tokens: list[str] = []
    for value in values:
        for element in value.split(","):
            found = None
            for pair in element.split(";"):
                name, eq, token = pair.partition("=")
                if eq and name.strip().lower() == "for":
                    found = token.strip().strip('"')
                    break
            if found is None:
                return None
            tokens.append(found)
    return tokens


def _client_ip(compiled: _Compiled, peer: str, forwarded: list[str], malformed: list[str]) -> str:
    peer_ip = normalise_ip(_strip_port(peer.strip())) if peer else None
    if peer_ip is None:
        if peer or not compiled.trusted:
            malformed.append("peer address is not an IP")
            return UNKNOWN_IP
        # No peer address at all means a unix socket: only a local proxy can be on the other
        # end, so when proxies are configured we treat it as one of them.
        peer_trusted = True
        fallback = UNKNOWN_IP
    else:
        peer_trusted = bool(compiled.trusted) and compiled.is_trusted(peer_ip)
        fallback = peer_ip
    if not peer_trusted or not forwarded:
        return fallback

    tokens: list[str] | None
    if compiled.forwarded_style:
        tokens = _forwarded_for(forwarded)
        if tokens is None:
            malformed.append("forwarded header without for=")
            return fallback
    else:
        tokens = [token for value in forwarded for token in value.split(",")]

    client = fallback
    for hop, token in enumerate(reversed(tokens)):
        if hop >= MAX_FORWARDED_HOPS:
            malformed.append("forwarding chain too long")
            return fallback
        token = token.strip()
        if not token:
            continue
        ip = normalise_ip(_strip_port(token))
        if ip is None:
            malformed.append("bogus address in forwarding header")
            return fallback
        client = ip
        if not compiled.is_trusted(ip):
            return ip
    # Every hop was one of our proxies: the leftmost is as close to the client as we get.
    return client


# --- identity ----------------------------------------------------------------------------


def _cookie(values: list[str], name: str) -> str | None:
    """Value of cookie ``name`` across Cookie header lines; first wins. Tolerant of junk."""
    for value in values:
        if name not in value:
            continue
        for pair in value.split(";"):
            key, eq, found = pair.partition("=")
            if eq and key.strip() == name:
                found = found.strip()
                if len(found) >= 2 and found[0] == '"' and found[-1] == '"':
                    found = found[1:-1]
                return found
    return None


def parse_timestamp(text: str) -> float | None:
    """Epoch seconds from ``"1700000000"``, ``"1700000000.5"`` or ISO 8601; None if neither."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            # fromisoformat in 3.11 reads "Z" and most ISO 8601 forms.
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        try:
            return moment.timestamp()
        except (OverflowError, ValueError, OSError):
            return None
    return value if math.isfinite(value) else None


# --- the request -------------------------------------------------------------------------


def _text(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return raw.decode("latin-1")
    if isinstance(raw, str):
        return raw
    return str(raw)


def _path_is_bad_utf8(path: str) -> bool:
    """Does the path, raw or percent-decoded, hold bytes that are not UTF-8?"""
    if path.isascii():
        if "%" not in path:
            return False
        raw = unquote_to_bytes(path)
    else:
        try:
            # Doors hand us raw bytes decoded as latin-1; get those bytes back.
            raw = path.encode("latin-1")
        except UnicodeEncodeError:
            # Already real text (characters above U+00FF). A replacement character means a
            # server upstream already met bytes that were not UTF-8 and papered over them.
            if "\ufffd" in path:
                return True
            try:
                raw = path.encode("utf-8")
            except UnicodeEncodeError:
                return True
        if b"%" in raw:
            raw = unquote_to_bytes(raw)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def facts_from_http(
    policy: Policy,
    *,
    now: float,
    peer: str,
    method: str,
    path: str,
    query: str,
    headers: Iterable[_HeaderItem],
    account_id: str | None = None,
    account_created: float | None = None,
    scheme: str = "http",
) -> RequestFacts:
    """Build the facts for one request from what a door saw on the wire. Never raises.

    ``scheme`` is what the door saw (``https`` behind TLS); a trusted proxy's
    ``X-Forwarded-Proto`` overrides it. It lands in ``facts.extra["scheme"]``: browsers send client
    hints and ``Sec-Fetch-*`` only on secure origins, and client sanity needs to know which.

    ``headers`` are (name, value) pairs as bytes (ASGI) or latin-1 strings. ``path`` is the raw
    request path without the query; it is kept as sent (no percent-decoding). Explicit
    ``account_id``/``account_created`` (from the site's own callables) win over headers and
    cookies named in ``policy.identity``.
    """
    compiled = _compiled(policy)
    malformed: list[str] = []

    if not isinstance(method, str) or not method:
        malformed.append("missing method")
        method = "GET"
    elif len(method) > MAX_METHOD or not (method.isascii() and method.isalpha()):
        malformed.append("unusual method")
        method = method[:MAX_METHOD]

    if not isinstance(path, str):
        path = _text(path)
    if len(path) > MAX_PATH:
        malformed.append("path too long")
        path = path[:MAX_PATH]
    if _path_is_bad_utf8(path):
        malformed.append("invalid utf-8 in path")
    if not path.startswith("/"):
        malformed.append("path does not start with /")

    if not isinstance(query, str):
        query = _text(query)
    if len(query) > MAX_QUERY:
        malformed.append("query too long")
        query = query[:MAX_QUERY]

    roles = compiled.roles
    want_cookies = bool(compiled.account_cookie or compiled.session_cookie)

    kept: list[tuple[str, str]] = []
    forwarded: list[str] = []
    cookies: list[str] = []
    user_agent = ""
    header_account: str | None = None
    header_created: str | None = None
    api_key: str | None = None
    forwarded_proto: str | None = None
    too_long = False
    count = 0
    try:
        for raw_name, raw_value in headers:
            count += 1
            if count > MAX_HEADERS:
                malformed.append("too many headers")
                break
            # The type checks are inlined: this loop runs for every header of every request.
            name = (raw_name.decode("latin-1") if type(raw_name) is bytes else _text(raw_name)).lower()
            value = raw_value.decode("latin-1") if type(raw_value) is bytes else _text(raw_value)
            if len(name) > MAX_HEADER_NAME:
                name = name[:MAX_HEADER_NAME]
                too_long = True
            if len(value) > MAX_HEADER_VALUE:
                value = value[:MAX_HEADER_VALUE]
                too_long = True
            kept.append((name, value))
            role = roles.get(name)
            if role is None:
                continue
            if role == _USER_AGENT:
                if not user_agent:
                    user_agent = value
            elif role == _CLIENT_IP:
                forwarded.append(value)
            elif role == _COOKIE:
                if want_cookies:
                    cookies.append(value)
            elif role == _ACCOUNT:
                if header_account is None:
                    header_account = value.strip()
            elif role == _CREATED:
                if header_created is None:
                    header_created = value
            elif role == _API_KEY:
                if api_key is None:
                    api_key = value.strip()
            elif forwarded_proto is None:
                forwarded_proto = value
    except (TypeError, ValueError):
        # Headers that are not (name, value) pairs: keep what we read so far.
        malformed.append("unreadable headers")
    if too_long:
        malformed.append("header too long")

    if not isinstance(peer, str):
        peer = ""
    ip = _client_ip(compiled, peer, forwarded, malformed)
    if forwarded_proto is not None and compiled.trusted:
        # Believed only from a trusted proxy: a scraper must not claim https to dodge the
        # secure-origin header checks.
        peer_ip = normalise_ip(_strip_port(peer.strip())) if peer else None
        if peer_ip is not None and compiled.is_trusted(peer_ip):
            scheme = forwarded_proto.split(",")[0].strip().lower()

    if account_id is None:
        if header_account:
            account_id = header_account
        elif compiled.account_cookie:
            account_id = _cookie(cookies, compiled.account_cookie) or None
    session_id = (_cookie(cookies, compiled.session_cookie) or None) if compiled.session_cookie else None

    if account_created is None and header_created is not None and header_created.strip():
        account_created = parse_timestamp(header_created)
        if account_created is None:
            malformed.append("unparsable account creation time")

    return RequestFacts(
        now=now,
        ip=ip,
        method=method,
        path=path,
        query=query,
        headers=tuple(kept),
        user_agent=user_agent,
        account_id=account_id,
        account_created=account_created,
        session_id=session_id,
        api_key=api_key or None,
        malformed=tuple(malformed),
        extra={"scheme": scheme} if scheme == "https" else {},
    )
