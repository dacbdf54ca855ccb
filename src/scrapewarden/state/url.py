"""Open a state store from a URL such as ``sqlite:///scrapewarden.db``.

Supported URLs::

    memory://                     in-process only (the default when nothing is configured)
    sqlite:///relative/path.db    three slashes: relative to the working directory
    sqlite:////abs/path.db        four slashes: absolute path (SQLAlchemy's convention)
    redis://host:6379/0           Redis / Valkey; rediss:// for TLS, redis+cluster://h:p,h:p,
                                  redis+sentinel://h:p,h:p/service (see state/redis/config.py)

When no URL is passed, ``SCRAPEWARDEN_STATE`` is read. Adding a backend means adding one
function to ``_OPENERS``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from urllib.parse import SplitResult, unquote, urlsplit

from .base import StateStore
from .errors import StateURLError

ENV_VAR = "SCRAPEWARDEN_STATE"
DEFAULT_URL = "memory://"


def open_state(
    url: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    retention_seconds: float | None = None,
) -> StateStore:
    """Open the store named by ``url`` (or ``$SCRAPEWARDEN_STATE``, or ``memory://``).

    ``retention_seconds`` is handed to backends that prune old events by themselves (SQLite).
    Raises :class:`StateURLError` for a URL that cannot be used.
    """
    if url is None:
        url = (os.environ if env is None else env).get(ENV_VAR, "")
    url = url.strip() or DEFAULT_URL
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise StateURLError(f"bad state URL {redact(url)!r}: {exc}") from exc
    opener = _OPENERS.get(parts.scheme.lower())
    if opener is None:
        known = ", ".join(f"{scheme}://" for scheme in _OPENERS)
        raise StateURLError(f"bad state URL {redact(url)!r}: unknown scheme; expected one of {known}")
    return opener(url, parts, retention_seconds)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for error messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _open_memory(url: str, parts: SplitResult, retention_seconds: float | None) -> StateStore:
    if parts.netloc or parts.path.strip("/") or parts.query or parts.fragment:
        raise StateURLError(f"bad state URL {redact(url)!r}: memory:// takes no host, path or options")
    from .memory import MemoryStore

    return MemoryStore(url="memory://")


def _open_sqlite(url: str, parts: SplitResult, retention_seconds: float | None) -> StateStore:
    hint = "use sqlite:///relative/path.db or sqlite:////absolute/path.db"
    if parts.netloc:
        raise StateURLError(f"bad state URL {url!r}: a sqlite URL has no host ({parts.netloc!r}); {hint}")
    if parts.query or parts.fragment:
        raise StateURLError(f"bad state URL {url!r}: sqlite URLs take no ?options or #fragment; {hint}")
    # urlsplit leaves "/relative.db" or "//abs.db": the first slash only separates the (empty) host.
    path = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if not path or path.endswith("/"):
        raise StateURLError(f"bad state URL {url!r}: no database file named; {hint}")
    if path == ":memory:":
        raise StateURLError(f"bad state URL {url!r}: for in-process state use memory://")
    from .sqlite import SQLiteStore

    return SQLiteStore(path, retention_seconds=retention_seconds, url=url)


def _open_redis(url: str, parts: SplitResult, retention_seconds: float | None) -> StateStore:
    from .redis import RedisStore, parse_redis_url

    return RedisStore(parse_redis_url(url, redact(url)), retention_seconds=retention_seconds)


_OPENERS: dict[str, Callable[[str, SplitResult, float | None], StateStore]] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
    "redis": _open_redis,
    "rediss": _open_redis,
    "redis+cluster": _open_redis,
    "rediss+cluster": _open_redis,
    "redis+sentinel": _open_redis,
    "rediss+sentinel": _open_redis,
}
