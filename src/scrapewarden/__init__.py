"""scrapewarden: stop bulk scraping of personal information while real people browse untroubled.

    from scrapewarden import ScrapeWardenMiddleware, ScrapeWardenWSGIMiddleware, Warden, Policy

Names are loaded on first use, so ``import scrapewarden`` stays cheap and pulls in no web
framework.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core.policy import Policy
    from .doors.asgi import ScrapeWardenMiddleware
    from .doors.wsgi import ScrapeWardenWSGIMiddleware
    from .warden import Warden

__all__ = ["Policy", "ScrapeWardenMiddleware", "ScrapeWardenWSGIMiddleware", "Warden"]

_WHERE = {
    "Policy": ".core.policy",
    "ScrapeWardenMiddleware": ".doors.asgi",
    "ScrapeWardenWSGIMiddleware": ".doors.wsgi",
    "Warden": ".warden",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'scrapewarden' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
