"""Header sets of real browsers and of HTTP libraries, in the order each one sends them.

A person keeps one browser for the whole session, so every request of that person carries one
consistent header set. The sets follow what current desktop and mobile Chrome, Firefox and
Safari send over HTTP/1.1 to a secure origin (loopback counts as one): Chrome sends ``sec-ch-ua``
client hints and ``Sec-Fetch-*``; Firefox and Safari send ``Sec-Fetch-*`` and no client hints.
``Host`` comes first in all of them (aiohttp writes it first); an empty ``Cookie`` entry marks
where the browser puts its cookies (the client fills it in, or drops it when it has none).
Bump the version constants as browsers move on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

CHROME_VERSION = 142
FIREFOX_VERSION = 145
SAFARI_VERSION = "26.1"

AssetKind = Literal["style", "script", "image"]
Family = Literal["chrome", "firefox", "safari"]

# (user agent, sec-ch-ua-platform, mobile) per platform.
_CHROME_PLATFORMS = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{CHROME_VERSION}.0.0.0 Safari/537.36",
        '"Windows"',
        False,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{CHROME_VERSION}.0.0.0 Safari/537.36",
        '"macOS"',
        False,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{CHROME_VERSION}.0.0.0 Mobile Safari/537.36",
        '"Android"',
        True,
    ),
)
_FIREFOX_PLATFORMS = tuple(
    f"Mozilla/5.0 ({platform}; rv:{FIREFOX_VERSION}.0) Gecko/20100101 Firefox/{FIREFOX_VERSION}.0"
    for platform in ("Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10.15", "X11; Linux x86_64")
)
_SAFARI_PLATFORMS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    f"Version/{SAFARI_VERSION} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    f"Version/{SAFARI_VERSION} Mobile/15E148 Safari/604.1",
)
CHROME_UA = _CHROME_PLATFORMS[0][0]
"""Desktop Chrome on Windows: the user agent scrapers most often copy."""

# (primary language tag, fallbacks) as the browser's language settings would list them.
_LOCALES = (
    ("en-US", ("en",)),
    ("en-GB", ("en",)),
    ("de-DE", ("de", "en")),
    ("fr-FR", ("fr", "en")),
    ("es-ES", ("es", "en")),
    ("pt-BR", ("pt", "en")),
    ("nl-NL", ("nl", "en")),
    ("it-IT", ("it", "en")),
    ("ja-JP", ("ja", "en")),
    ("pl-PL", ("pl", "en")),
)

_ACCEPT_DOCUMENT = {
    "chrome": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,"
    "*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    "firefox": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "safari": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
}
_ACCEPT_ASSET: dict[str, dict[str, str]] = {
    "chrome": {
        "style": "text/css,*/*;q=0.1",
        "script": "*/*",
        "image": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    },
    "firefox": {
        "style": "text/css,*/*;q=0.1",
        "script": "*/*",
        "image": "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
    },
    "safari": {
        "style": "text/css,*/*;q=0.1",
        "script": "*/*",
        "image": "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,"
        "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
    },
}
_ENCODING = {
    "chrome": "gzip, deflate, br, zstd",
    "firefox": "gzip, deflate, br, zstd",
    "safari": "gzip, deflate",
}


def _accept_language(family: str, primary: str, fallbacks: tuple[str, ...]) -> str:
    tags = [primary, *fallbacks]
    if family == "firefox":
        # Firefox steps q down evenly from 1 over the list: "en-US,en;q=0.5", "de,en;q=0.7,fr;q=0.3".
        n = len(tags)
        return ",".join([tags[0]] + [f"{tag};q={round(1 - i / n, 1)}" for i, tag in enumerate(tags[1:], 1)])
    return ",".join([tags[0]] + [f"{tag};q=0.{9 - i}" for i, tag in enumerate(tags[1:])])


@dataclass(frozen=True)
class Browser:
    """One browser install: family, user agent, platform hints and language settings."""

    family: Family
    user_agent: str
    accept_language: str
    platform: str = ""
    """``sec-ch-ua-platform`` (Chrome only)."""
    mobile: bool = False

    @property
    def client_hints(self) -> list[tuple[str, str]]:
        brands = (
            f'"Chromium";v="{CHROME_VERSION}", "Google Chrome";v="{CHROME_VERSION}", "Not_A Brand";v="99"'
        )
        return [
            ("sec-ch-ua", brands),
            ("sec-ch-ua-mobile", "?1" if self.mobile else "?0"),
            ("sec-ch-ua-platform", self.platform),
        ]

    def page(self, referer: str | None, *, user_click: bool = True) -> dict[str, str]:
        """Headers of a top-level navigation (typed URL when ``referer`` is None, else a click)."""
        site = "same-origin" if referer else "none"
        accept = _ACCEPT_DOCUMENT[self.family]
        encoding = _ENCODING[self.family]
        headers: list[tuple[str, str | None]]
        if self.family == "chrome":
            headers = [
                ("Connection", "keep-alive"),
                *self.client_hints,
                ("Upgrade-Insecure-Requests", "1"),
                ("User-Agent", self.user_agent),
                ("Accept", accept),
                ("Sec-Fetch-Site", site),
                ("Sec-Fetch-Mode", "navigate"),
                ("Sec-Fetch-User", "?1" if user_click else None),
                ("Sec-Fetch-Dest", "document"),
                ("Referer", referer),
                ("Accept-Encoding", encoding),
                ("Accept-Language", self.accept_language),
            ]
        elif self.family == "firefox":
            headers = [
                ("User-Agent", self.user_agent),
                ("Accept", accept),
                ("Accept-Language", self.accept_language),
                ("Accept-Encoding", encoding),
                ("Referer", referer),
                ("Connection", "keep-alive"),
                ("Cookie", ""),
                ("Upgrade-Insecure-Requests", "1"),
                ("Sec-Fetch-Dest", "document"),
                ("Sec-Fetch-Mode", "navigate"),
                ("Sec-Fetch-Site", site),
                ("Sec-Fetch-User", "?1" if user_click else None),
                ("Priority", "u=0, i"),
            ]
        else:
            headers = [
                ("Sec-Fetch-Dest", "document"),
                ("User-Agent", self.user_agent),
                ("Accept", accept),
                ("Sec-Fetch-Site", site),
                ("Sec-Fetch-Mode", "navigate"),
                ("Accept-Language", self.accept_language),
                ("Referer", referer),
                ("Accept-Encoding", encoding),
                ("Connection", "keep-alive"),
                ("Priority", "u=0, i"),
            ]
        return {name: value for name, value in headers if value is not None}

    def form_post(self, referer: str, origin: str) -> dict[str, str]:
        """Headers of a form submission; the client fills in the empty ``Content-Length``."""
        headers = self.page(referer)
        # Browsers send Origin and the form's Content-Type with every POST, near the top
        # (Chrome: before Upgrade-Insecure-Requests; Firefox and Safari: after Accept). Close
        # enough for all three: right after Accept.
        out: dict[str, str] = {}
        for name, value in headers.items():
            out[name] = value
            if name == "Accept":
                out["Content-Type"] = "application/x-www-form-urlencoded"
                out["Content-Length"] = ""
                out["Origin"] = origin
                out["Cache-Control"] = "max-age=0"
        return out

    def asset(self, kind: AssetKind, referer: str) -> dict[str, str]:
        """Headers of a subresource load (stylesheet, script, image) from a page."""
        accept = _ACCEPT_ASSET[self.family][kind]
        encoding = _ENCODING[self.family]
        mode = "no-cors"  # same-origin subresources without a crossorigin attribute
        if self.family == "chrome":
            hints = dict(self.client_hints)
            return {
                "Connection": "keep-alive",
                "sec-ch-ua-platform": hints["sec-ch-ua-platform"],
                "User-Agent": self.user_agent,
                "sec-ch-ua": hints["sec-ch-ua"],
                "sec-ch-ua-mobile": hints["sec-ch-ua-mobile"],
                "Accept": accept,
                "Sec-Fetch-Site": "same-origin",
                "Sec-Fetch-Mode": mode,
                "Sec-Fetch-Dest": kind,
                "Referer": referer,
                "Accept-Encoding": encoding,
                "Accept-Language": self.accept_language,
            }
        if self.family == "firefox":
            return {
                "User-Agent": self.user_agent,
                "Accept": accept,
                "Accept-Language": self.accept_language,
                "Accept-Encoding": encoding,
                "Referer": referer,
                "Connection": "keep-alive",
                "Cookie": "",
                "Sec-Fetch-Dest": kind,
                "Sec-Fetch-Mode": mode,
                "Sec-Fetch-Site": "same-origin",
                "Priority": "u=2" if kind == "style" else "u=4, i" if kind == "image" else "u=3",
            }
        return {
            "Referer": referer,
            "Sec-Fetch-Dest": kind,
            "User-Agent": self.user_agent,
            "Accept": accept,
            "Sec-Fetch-Site": "same-origin",
            "Sec-Fetch-Mode": mode,
            "Accept-Language": self.accept_language,
            "Accept-Encoding": encoding,
            "Connection": "keep-alive",
        }


def chrome(rng: random.Random | None = None) -> Browser:
    """Desktop Chrome on Windows (or a random Chrome platform when given ``rng``)."""
    ua, platform, mobile = _CHROME_PLATFORMS[0] if rng is None else rng.choice(_CHROME_PLATFORMS)
    primary, fallbacks = _LOCALES[0] if rng is None else rng.choice(_LOCALES)
    return Browser("chrome", ua, _accept_language("chrome", primary, fallbacks), platform, mobile)


def pick_browser(rng: random.Random) -> Browser:
    """A browser as people use them: mostly Chrome, then Safari, then Firefox; any language."""
    family: Family = rng.choices(("chrome", "safari", "firefox"), weights=(65, 22, 13))[0]
    primary, fallbacks = rng.choice(_LOCALES)
    language = _accept_language(family, primary, fallbacks)
    if family == "chrome":
        ua, platform, mobile = rng.choice(_CHROME_PLATFORMS)
        return Browser("chrome", ua, language, platform, mobile)
    if family == "firefox":
        return Browser("firefox", rng.choice(_FIREFOX_PLATFORMS), language)
    ua = rng.choice(_SAFARI_PLATFORMS)
    return Browser("safari", ua, language, mobile="iPhone" in ua)


PYTHON_REQUESTS_UA = "python-requests/2.32.3"


def library_headers(user_agent: str = PYTHON_REQUESTS_UA) -> dict[str, str]:
    """What ``requests`` sends by default, in its order; ``user_agent`` swapped in when spoofing."""
    return {
        "User-Agent": user_agent,
        "Accept-Encoding": "gzip, deflate",
        "Accept": "*/*",
        "Connection": "keep-alive",
    }
