"""Request facts: everything the engine may know about one request.

Doors (middleware, proxy, log reader) build a :class:`RequestFacts` from whatever they see;
the core never touches sockets, clocks or frameworks. Header values are already decoded to
``str`` (latin-1, as HTTP/1.1 allows) and truncated by :func:`scrapewarden.core.sanitize`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RequestFacts:
    """One request, as seen by the engine. ``now`` is seconds since the epoch, passed in."""

    now: float
    ip: str
    """Client address after trusted-proxy resolution, normalised (``ipaddress`` string form)."""
    method: str = "GET"
    path: str = "/"
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    """Header (lower-case name, value) pairs in the order the client sent them."""
    user_agent: str = ""
    account_id: str | None = None
    account_created: float | None = None
    """Account creation time, seconds since the epoch, when the site tells us."""
    session_id: str | None = None
    api_key: str | None = None
    malformed: tuple[str, ...] = ()
    """Reasons the raw request was odd (bad UTF-8, absurd lengths, bogus forwarding header...)."""
    extra: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """First value of a header by lower-case name, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None
