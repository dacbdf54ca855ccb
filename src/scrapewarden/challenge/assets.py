"""The challenge page's scripts, read once from the package and served by every door."""

from __future__ import annotations

from functools import cache
from importlib import resources

SCRIPTS = {"/.sw/challenge.js": "challenge.js", "/.sw/worker.js": "worker.js"}
"""URL path -> file in ``challenge/static``."""

SCRIPT_HEADERS = (
    ("Content-Type", "text/javascript; charset=utf-8"),
    # The files change only with the package version; a short cache keeps pages fast without
    # leaving an old script in browsers for long after an upgrade.
    ("Cache-Control", "public, max-age=3600"),
    ("X-Content-Type-Options", "nosniff"),
)


@cache
def script(path: str) -> bytes | None:
    """The bytes of the script served at ``path`` (e.g. "/.sw/worker.js"), or None."""
    name = SCRIPTS.get(path)
    if name is None:
        return None
    return resources.files("scrapewarden.challenge").joinpath("static", name).read_bytes()
