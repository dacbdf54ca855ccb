"""Client sanity: does the software on the other end look like a browser a person uses?

Signals, each an :class:`Evidence` weighted by the policy's ``client`` section:

``client.ai_crawler`` / ``client.bot_ua`` / ``client.headless``
    The user agent names a known crawler, HTTP library, AI crawler or automation tool
    (shipped lists, see :mod:`.ua_patterns`). ``client.empty_ua``: no user agent at all.
``client.deny_ua``
    The user agent matches one of the operator's ``deny.user_agents`` expressions (weight 100).
``client.inconsistent_browser``
    The user agent claims a mainstream browser but the headers contradict it: no ``Accept`` or
    ``Accept-Encoding``; a Chromium claim without ``sec-ch-ua`` client hints; no ``Sec-Fetch-*``
    from a browser version that always sends them; Chromium client hints from Firefox or
    Safari; hint brand version or platform differing from the user agent; an ``h2c`` upgrade.
``client.header_order``
    Core headers in an order no browser uses (``Host`` late, ``Accept-Encoding`` before
    ``Accept``), typical of HTTP libraries sending a spoofed browser user agent.
``client.missing_accept_language``
    Every browser sends ``Accept-Language``; many scripts do not.

Secure contexts: Chromium sends client hints, and browsers send ``Sec-Fetch-*``, only to
potentially trustworthy origins: HTTPS, and ``localhost``/``127.0.0.0/8``/``[::1]`` even over
plain HTTP (Chrome and Firefox treat loopback as trustworthy; the recorded headless Chromium in
the test data confirms it). A request counts as secure when the door set
``facts.extra["scheme"] = "https"``, when the ``Host`` is a loopback name, or when the client
itself sent ``Sec-Fetch-*`` (only browsers on secure origins do). Plain HTTP with no such sign
is not held to those two checks, so a site served over HTTP sees no false positives from them.
Headers the client controls never *lower* suspicion (``X-Forwarded-Proto`` is ignored here).

Speed: everything derived from the user agent alone is cached per user-agent string, and the
header checks per (user agent, header shape); a repeat client costs two cache look-ups and one
pass over its header names. Both caches are bounded LRUs.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from ..decision import Evidence
from ..facts import RequestFacts
from ..policy import Policy
from .ua_patterns import BotPatterns

MAX_UA_CHARS = 512
"""Only this much of a user agent is analysed and cached; real ones are far shorter."""
DENY_WEIGHT = 100.0
_ACTOR = "fingerprint"

# Which well-known crawler a user agent claims to be, for verification by address range or
# forward-confirmed reverse DNS. Keys are the bot names used by the IP range lists.
_CLAIMS: dict[str, str] = {
    r"Googlebot|Storebot-Google|Google-InspectionTool|GoogleOther|AdsBot-Google|Mediapartners-Google"
    r"|APIs-Google|FeedFetcher-Google": "googlebot",
    r"bingbot|BingPreview|msnbot|adidxbot|MicrosoftPreview": "bingbot",
    r"Applebot": "applebot",
    r"DuckDuckBot": "duckduckbot",
    r"DuckAssistBot": "duckassistbot",
    r"Yahoo! Slurp": "yahoo",
    r"Yandex[A-Za-z]*Bot|YandexImages|YandexMobileBot": "yandex",
    r"Baiduspider": "baidu",
    r"GPTBot|OAI-SearchBot|ChatGPT-User": "openai",
    r"PerplexityBot|Perplexity-User": "perplexity",
    r"PetalBot": "petalbot",
    r"SeznamBot": "seznambot",
}
_CLAIM_RE = re.compile("|".join(f"(?P<c{i}>{p})" for i, p in enumerate(_CLAIMS)))
_CLAIM_NAMES = list(_CLAIMS.values())

# Mainstream browser claims, the ones whose header behaviour is well known. Forks, desktop apps
# and in-app browsers (Android WebView, Samsung Internet, Electron apps...) put their own token
# around Chrome/ or Firefox/, do not match, and are only checked for Accept-Language.
_CHROMIUM = re.compile(
    r"\(KHTML, like Gecko\) Chrome/(\d+)[\d.]* (?:Mobile )?Safari/[\d.]+(?: (?:Edg|EdgA|OPR)/[\d.]+)?$"
)
_FIREFOX = re.compile(r"\) Gecko/[\d.]+ Firefox/(\d+)[\d.]*$")
_SAFARI = re.compile(r"\) Version/(\d+)[\d.]*(?: Mobile/\w+)? Safari/[\d.]+$")
# Brands whose version is the Chromium major version (Opera's and Brave's brands are not).
_CH_VERSION = re.compile(r'"(?:Chromium|Google Chrome|Microsoft Edge)";\s*v="(\d+)"')

CLIENT_HINTS_SINCE = 90
"""Chromium ships ``sec-ch-ua`` by default from 89; 90 leaves a margin."""
SEC_FETCH_SINCE = {"chromium": 80, "firefox": 90, "safari": 17}
"""First major versions that send ``Sec-Fetch-*`` (Chrome 76, Firefox 90, Safari 16.4), with margin."""

_SEC_FETCH = ("sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest")
_PROXY_SET = frozenset({"host", "user-agent", "accept", "accept-encoding", "accept-language", "connection"})
_LOOPBACK_HOSTS = ("127.", "localhost", "[::1]")


def show(value: str, limit: int = 80) -> str:
    """``repr`` of an attacker-controlled value, cut to ``limit`` characters: safe in logs."""
    if len(value) > limit:
        return repr(value[:limit]) + "…"
    return repr(value)


class UaInfo(NamedTuple):
    """What the user agent alone says; cached per user agent."""

    evidence: tuple[Evidence, ...]
    claimed: str | None
    family: str
    """``chromium``, ``firefox``, ``safari`` for mainstream browser claims; ``other`` otherwise."""
    version: int
    label: str
    """Human name of the claim for reasons, e.g. ``Chrome 120``."""
    platform: str
    """The ``sec-ch-ua-platform`` value the user agent implies, '' if several are possible."""
    judge_headers: bool
    """False when the user agent already gave it away (bot, empty): header checks add nothing."""


def _platform(ua: str) -> str:
    if "Windows NT" in ua:
        return '"Windows"'
    if "Macintosh" in ua:
        return '"macOS"'
    if "Android" in ua:
        return '"Android"'
    # "X11; Linux" is also what Chrome on Android sends in desktop mode, and ChromeOS may
    # report either name: no single expected value.
    return ""


class ClientSanity:
    """Per-request client checks. Thread-safe (the caches are ``functools.lru_cache``)."""

    def __init__(self, policy: Policy, patterns: BotPatterns, *, cache_size: int = 8192) -> None:
        weights = policy.client
        self.patterns = patterns
        self._w_bot = weights.bot_user_agents
        self._w_ai = weights.ai_crawlers
        self._w_headless = weights.headless
        self._w_inconsistent = weights.inconsistent_browser
        self._w_language = weights.missing_accept_language
        for expression in policy.deny.user_agents:
            try:
                re.compile(expression)
            except re.error as exc:
                # A typo in a deny rule must stop start-up, not silently disable the rule.
                raise ValueError(f"deny.user_agents: bad regular expression {expression!r}: {exc}") from exc
        self._deny = (
            re.compile("|".join(f"(?:{e})" for e in policy.deny.user_agents), re.IGNORECASE)
            if policy.deny.user_agents
            else None
        )
        self._ua_info = lru_cache(maxsize=cache_size)(self._analyse_ua)
        self._shape = lru_cache(maxsize=cache_size)(self._analyse_shape)

    # -- public ------------------------------------------------------------------------------

    def claimed_bot(self, user_agent: str) -> str | None:
        """Which well-known crawler ``user_agent`` claims to be (``googlebot``...), or None."""
        return self._ua_info(user_agent[:MAX_UA_CHARS]).claimed

    def check(self, facts: RequestFacts) -> list[Evidence]:
        """Evidence about the client software. Never raises on any input."""
        ua = facts.user_agent[:MAX_UA_CHARS]
        info = self._ua_info(ua)
        headers = facts.headers
        if not info.judge_headers or not headers or facts.method == "OPTIONS":
            # OPTIONS: CORS preflights carry a reduced header set by design.
            return list(info.evidence)
        names = tuple([name for name, _ in headers])
        if "host" not in names and "accept" not in names:
            # Not a full header set (e.g. a log line gave us only the user agent): nothing to judge.
            return list(info.evidence)
        values = dict(headers)
        host = values.get("host", "")
        secure = (
            facts.extra.get("scheme") == "https"
            or host.startswith(_LOOPBACK_HOSTS)
            or "sec-fetch-mode" in values
            or "sec-fetch-site" in values
        )
        found = self._shape(
            ua,
            names,
            values.get("sec-ch-ua"),
            values.get("sec-ch-ua-platform"),
            values.get("sec-ch-ua-mobile"),
            secure,
        )
        if not info.evidence:
            return list(found)
        return [*info.evidence, *found]

    def cache_info(self) -> dict[str, int]:
        """Sizes and hit counts of both caches, for the benchmark and the dashboard."""
        ua, shape = self._ua_info.cache_info(), self._shape.cache_info()
        return {
            "ua_hits": ua.hits,
            "ua_misses": ua.misses,
            "shape_hits": shape.hits,
            "shape_misses": shape.misses,
        }

    # -- the user agent alone ----------------------------------------------------------------

    def _analyse_ua(self, ua: str) -> UaInfo:
        evidence: list[Evidence] = []
        claim = _CLAIM_RE.search(ua)
        claimed = _CLAIM_NAMES[int(claim.lastgroup[1:])] if claim is not None and claim.lastgroup else None
        if self._deny is not None and self._deny.search(ua):
            evidence.append(
                Evidence("client.deny_ua", DENY_WEIGHT, f"user agent on the deny list: {show(ua)}", _ACTOR)
            )
        if not ua.strip():
            evidence.append(Evidence("client.empty_ua", self._w_bot, "no user agent", _ACTOR))
            return UaInfo(tuple(evidence), None, "other", 0, "", "", False)
        match = self.patterns.classify(ua)
        if match is not None:
            text = show(match.text, 40)
            if match.kind == "ai":
                evidence.append(
                    Evidence("client.ai_crawler", self._w_ai, f"AI crawler user agent ({text})", _ACTOR)
                )
            elif match.kind == "headless":
                evidence.append(
                    Evidence(
                        "client.headless", self._w_headless, f"headless/automation browser ({text})", _ACTOR
                    )
                )
            else:
                evidence.append(Evidence("client.bot_ua", self._w_bot, f"bot user agent ({text})", _ACTOR))
            return UaInfo(tuple(evidence), claimed, "other", 0, "", "", False)
        if claimed is not None:
            # Claims a crawler we verify but matched no bot pattern: the engine's verification
            # decides; header checks would only punish an unusual crawler build.
            return UaInfo(tuple(evidence), claimed, "other", 0, "", "", False)
        family, version, label = self._browser(ua)
        return UaInfo(tuple(evidence), None, family, version, label, _platform(ua), True)

    @staticmethod
    def _browser(ua: str) -> tuple[str, int, str]:
        if not ua.startswith("Mozilla/5.0 ("):
            return "other", 0, ""
        m = _CHROMIUM.search(ua)
        if m is not None and "; wv)" not in ua and "iPhone" not in ua and "iPad" not in ua:
            name = "Edge" if " Edg" in ua else "Opera" if " OPR/" in ua else "Chrome"
            return "chromium", int(m.group(1)), f"{name} {m.group(1)}"
        m = _FIREFOX.search(ua)
        if m is not None:
            return "firefox", int(m.group(1)), f"Firefox {m.group(1)}"
        m = _SAFARI.search(ua)
        if m is not None and "Chrome/" not in ua and "Chromium/" not in ua:
            return "safari", int(m.group(1)), f"Safari {m.group(1)}"
        return "other", 0, ""

    # -- the header set ----------------------------------------------------------------------

    def _analyse_shape(
        self,
        ua: str,
        names: tuple[str, ...],
        ch_ua: str | None,
        ch_platform: str | None,
        ch_mobile: str | None,
        secure: bool,
    ) -> tuple[Evidence, ...]:
        info = self._ua_info(ua)
        found: list[Evidence] = []
        present = frozenset(names)
        if "accept-language" not in present:
            found.append(
                Evidence(
                    "client.missing_accept_language", self._w_language, "no Accept-Language header", _ACTOR
                )
            )
        if info.family == "other":
            return tuple(found)
        label = info.label
        problems: list[str] = []
        missing = [n for n in ("accept", "accept-encoding") if n not in present]
        if missing:
            problems.append("sends no " + " or ".join(missing))
        if info.family == "chromium":
            if ch_ua is None:
                if secure and info.version >= CLIENT_HINTS_SINCE:
                    problems.append("sends no sec-ch-ua client hints")
            else:
                if "HeadlessChrome" in ch_ua:
                    found.append(
                        Evidence(
                            "client.headless",
                            self._w_headless,
                            f"headless brand in sec-ch-ua {show(ch_ua)}",
                            _ACTOR,
                        )
                    )
                brand = _CH_VERSION.search(ch_ua)
                if brand is not None and int(brand.group(1)) != info.version:
                    problems.append(f"sec-ch-ua says version {brand.group(1)}")
                if ch_platform is not None and info.platform and ch_platform != info.platform:
                    problems.append(f"sec-ch-ua-platform is {show(ch_platform, 20)}")
                if ch_mobile == "?1" and info.platform in ('"Windows"', '"macOS"'):
                    problems.append("sec-ch-ua-mobile says mobile")
        elif ch_ua is not None:
            problems.append("sends Chromium client hints")
        if secure and info.version >= SEC_FETCH_SINCE[info.family] and not present.intersection(_SEC_FETCH):
            problems.append("sends no sec-fetch-* headers")
        if "http2-settings" in present:
            # The h2c upgrade (RFC 7540 3.2) always carries HTTP2-Settings. Browsers never
            # upgrade to cleartext HTTP/2; curl-based impersonators do. (WebSocket upgrades
            # carry no such header.)
            problems.append("asks for an h2c upgrade")
        if problems:
            found.append(
                Evidence(
                    "client.inconsistent_browser",
                    self._w_inconsistent,
                    f"claims {label} but " + "; ".join(problems),
                    _ACTOR,
                )
            )
        order = self._order_problem(names)
        if order:
            found.append(
                Evidence("client.header_order", self._w_inconsistent, f"claims {label} but {order}", _ACTOR)
            )
        return tuple(found)

    @staticmethod
    def _order_problem(names: tuple[str, ...]) -> str:
        # Only the core headers every client sends: proxies insert their own headers
        # (X-Forwarded-For, Via, CDN headers) but keep these in the client's order, and a
        # reverse proxy such as nginx writes Host first, as browsers do.
        core = [n for n in names if n in _PROXY_SET]
        if "host" in core and core[0] != "host":
            return f"sends Host after {core[0]}"
        if (
            "accept" in core
            and "accept-encoding" in core
            and core.index("accept-encoding") < core.index("accept")
        ):
            return "sends Accept-Encoding before Accept"
        return ""
