"""Open a state store from a URL such as ``sqlite:///scrapewarden.db``.

Supported URLs::

    memory://                     in-process only (the default when nothing is configured)
    sqlite:///relative/path.db    three slashes: relative to the working directory
    sqlite:////abs/path.db        four slashes: absolute path (SQLAlchemy's convention)
    redis://host:6379/0           Redis / Valkey; rediss:// for TLS, redis+cluster://h:p,h:p,
                                  redis+sentinel://h:p,h:p/service (see state/redis/config.py)

When no URL is passed, ``SCRAPEWARDEN_STATE`` is read, then the policy's ``state`` key (passed as
``default``). Adding a backend means adding one function to ``_OPENERS``: it checks the URL
(raising :class:`StateURLError`) and returns what opens the store, so a URL can be checked
without connecting (:func:`check_state_url`, used by the policy loader).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from urllib.parse import SplitResult, unquote, urlsplit

from .base import StateStore
from .errors import StateURLError

ENV_VAR = "SCRAPEWARDEN_STATE"
_USERINFO_PASSWORD = re.compile(r"^([^:/?#]*://[^:/?#@]*:)[^@]*@")
DEFAULT_URL = "memory://"


def open_state(
    url: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    retention_seconds: float | None = None,
    default: str | None = None,
    default_source: str = "the policy's state key",
) -> StateStore:
    """Open the store named by ``url``, else ``$SCRAPEWARDEN_STATE``, else ``default`` (the
    policy's ``state`` key), else ``memory://``.

    ``retention_seconds`` is handed to backends that prune old events by themselves (SQLite).
    Raises :class:`StateURLError` for a URL that cannot be used; a bad ``default`` is named as
    ``default_source``.
    """
    chosen, source = choose_url(url, env=env, default=default, default_source=default_source)
    try:
        opener = _opener(chosen)
    except StateURLError as exc:
        raise StateURLError(f"{source}: {exc}" if source else str(exc)) from None
    return opener(retention_seconds)


def choose_url(
    url: str | None,
    *,
    env: Mapping[str, str] | None = None,
    default: str | None = None,
    default_source: str = "the policy's state key",
) -> tuple[str, str]:
    """(the state URL to use, where it came from or "" for the flag/built-in).

    Precedence: ``url`` (the ``--state`` flag) > ``$SCRAPEWARDEN_STATE`` > ``default`` (the
    policy's ``state`` key) > ``memory://``.
    """
    if url is not None and url.strip():
        return url.strip(), ""
    from_env = (os.environ if env is None else env).get(ENV_VAR, "").strip()
    if from_env:
        return from_env, f"environment variable {ENV_VAR}"
    if default is not None and default.strip():
        return default.strip(), default_source
    return DEFAULT_URL, ""


def check_state_url(url: str) -> None:
    """Raise :class:`StateURLError` if ``url`` cannot name a store. Opens and connects nothing."""
    _opener(url.strip() or DEFAULT_URL)


def _opener(url: str) -> Callable[[float | None], StateStore]:
    """Check ``url`` and return what opens its store (given ``retention_seconds``)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise StateURLError(f"bad state URL {redact(url)!r}: {exc}") from exc
    checker = _OPENERS.get(parts.scheme.lower())
    if checker is None:
        known = ", ".join(f"{scheme}://" for scheme in _OPENERS)
        raise StateURLError(f"bad state URL {redact(url)!r}: unknown scheme; expected one of {known}")
    return checker(url, parts)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for error messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        # Unparseable (a stray bracket, say): still never show what may be a password.
        return _USERINFO_PASSWORD.sub(r"\1***@", url)
    if not password:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


Opener = Callable[[float | None], StateStore]
"""Opens a checked URL's store, given ``retention_seconds``."""


def _open_memory(url: str, parts: SplitResult) -> Opener:
    if parts.netloc or parts.path.strip("/") or parts.query or parts.fragment:
        raise StateURLError(f"bad state URL {redact(url)!r}: memory:// takes no host, path or options")
    from .memory import MemoryStore

    return lambda retention_seconds: MemoryStore(url="memory://")


def _open_sqlite(url: str, parts: SplitResult) -> Opener:
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

    return lambda retention_seconds: SQLiteStore(path, retention_seconds=retention_seconds, url=url)


def _open_redis(url: str, parts: SplitResult) -> Opener:
    from .redis import RedisStore, parse_redis_url

    config = parse_redis_url(url, redact(url))
    return lambda retention_seconds: RedisStore(config, retention_seconds=retention_seconds)


_OPENERS: dict[str, Callable[[str, SplitResult], Opener]] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
    "redis": _open_redis,
    "rediss": _open_redis,
    "redis+cluster": _open_redis,
    "rediss+cluster": _open_redis,
    "redis+sentinel": _open_redis,
    "rediss+sentinel": _open_redis,
}
