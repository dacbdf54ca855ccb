"""A deterministic, labelled access log of a people-search site, for ``bench analyze``.

One day of combined-format traffic to a site whose profile pages (``/users/{id}``) and search
(``/search?q=``) are the protected records. Who is in it:

People (label ``human``): sessions that land on the home page or, from a search engine, on one
profile; load the page's stylesheet, scripts and images (or not, with a warm cache); browse the
feed, search and profiles in no order with human pauses. Some view many profiles (recruiters),
many sit behind one carrier or office NAT address, some use IPv6, a few a VPN.

Verified crawlers (label ``verified_bot``): Googlebot and Bingbot from their published ranges,
crawling widely and politely.

Scrapers, five kinds, each with several instances whose parameters are drawn at random (order
of ids sequential or shuffled, speed, jitter, user agent, whether assets are fetched):

- ``single_ip``: one hosting address, library or spoofed browser user agent;
- ``subnet``: one /24 of a hosting provider, the work split over its addresses;
- ``rotating``: a residential proxy pool, thousands of addresses across many networks, a few
  requests each, a realistic browser user agent (the same ones people use, sometimes two or
  three at once), assets now and then, some warming each address up on the home page, some
  sending a fixed referer;
- ``bot_ua``: self-declared crawlers without published ranges (SEO and AI crawlers, scripts);
- ``headless``: headless Chrome from a few hosting addresses, fetching assets like a browser.

The generator knows nothing about the detector's thresholds; scraper volumes are what such
tools do in an afternoon (thousands to tens of thousands of records).
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..core.policy import Policy, ProtectedResource

DAY_START = 1772409600  # 2026-03-02 00:00:00 UTC
DAY = 86400
PROFILES = 400_000
"""Profile ids on the site (1..PROFILES)."""

POLICY = Policy(
    protected=[
        ProtectedResource(pattern="/users/{id}", kind="profile"),
        ProtectedResource(pattern="/search", query_param="q", kind="search"),
    ]
)
SCRAPER_KINDS = ("single_ip", "subnet", "rotating", "bot_ua", "headless")

_CHROME = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
    "Safari/537.36 Edg/{v}.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
]
_FIREFOX = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
]
_SAFARI = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{v} "
    "Safari/605.1.15",
]
BROWSERS = (
    [t.format(v=v) for t in _CHROME for v in range(124, 132)]
    + [t.format(v=v) for t in _FIREFOX for v in range(125, 134)]
    + [t.format(v=v) for t in _SAFARI for v in range(0, 7)]
)
_GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
_BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
_BOT_UAS = [
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "python-requests/2.31.0",
    "Scrapy/2.11.0 (+https://scrapy.org)",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (compatible; DataForSeoBot/1.0; +https://dataforseo.com/dataforseo-bot)",
]
_HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/{v}.0.0.0 "
    "Safari/537.36"
)
_LIB_UAS = ["python-requests/2.32.3", "Python-urllib/3.11", "axios/1.6.8", "okhttp/4.12.0"]
_REFERERS_OUT = ["https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/", ""]
SITE = "https://people.example"
_RESIDENTIAL = (24, 47, 68, 71, 73, 76, 79, 82, 86, 88, 90, 93, 95, 98, 109, 151, 176, 188, 189, 201)
"""First octets of the people's (and the proxy pool's) addresses: large consumer ISP blocks."""
_WORDS = [
    "anna", "smith", "berlin", "nurse", "lee", "garcia", "teacher", "london", "miller", "paris", "chen",
    "jones", "engineer", "madrid", "kim", "brown", "lyon", "muller", "rossi", "designer",
]  # fmt: skip


@dataclass(frozen=True)
class LogSpec:
    lines: int = 1_000_000
    seed: int = 1


@cache
def _ranges(folder: str, name: str) -> list[str]:
    from ..lists import _lines

    return _lines(folder, name)


def _in_cidr(rng: random.Random, cidr: str) -> str:
    import ipaddress

    net = ipaddress.ip_network(cidr)
    if net.num_addresses <= 2:
        return str(net.network_address)
    return str(net.network_address + rng.randrange(1, min(net.num_addresses - 1, 1 << 24)))


class _Ips:
    """Disjoint address pools, so that one address has one label."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        from ..lists import ip_reputation

        self._rep = ip_reputation(Policy())
        self._dc = [c for c in _ranges("x4bnet-lists-vpn", "datacenter.txt.gz") if ":" not in c]

    def _take(self, ip: str) -> str | None:
        if ip in self.used:
            return None
        self.used.add(ip)
        return ip

    def residential(self) -> str:
        rng = self.rng
        while True:
            head = f"{rng.choice(_RESIDENTIAL)}.{rng.randint(0, 255)}"
            ip = f"{head}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            if not self._rep.check(ip) and self._take(ip):
                return ip

    def ipv6(self) -> str:
        rng = self.rng
        while True:
            groups = ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(2))
            ip = f"2a02:{rng.randint(0x100, 0xFFF):x}:{groups}::{rng.randint(1, 0xFFFF):x}"
            if self._take(ip):
                return ip

    def datacenter(self) -> str:
        while True:
            cidr = self.rng.choice(self._dc)
            if int(cidr.split("/")[1]) > 24:
                continue
            ip = self._take(_in_cidr(self.rng, cidr))
            if ip:
                return ip

    def datacenter_24(self) -> str:
        """A whole free /24 in a hosting network; returns its first three octets."""
        while True:
            ip = self.datacenter()
            head = ip.rsplit(".", 1)[0]
            if not any(u.startswith(head + ".") for u in self.used if u != ip):
                return head

    def crawler(self, bot: str) -> str:
        cidrs = [c for c in _ranges("lord-alfred-ipranges", f"{bot}.txt") if ":" not in c]
        while True:
            ip = self._take(_in_cidr(self.rng, self.rng.choice(cidrs)))
            if ip:
                return ip


Line = tuple[float, str, str, str, int, int, str, str]
"""(time, ip, method, target, status, bytes, referer, user agent)"""


def _assets(rng: random.Random, first: bool) -> list[str]:
    out = []
    if first:
        out += ["/static/app.4f2a.css", "/static/app.9c1e.js", "/static/vendor.77b0.js", "/favicon.ico"]
    out += [f"/static/img/{rng.randint(1, 5000)}.webp" for _ in range(rng.randint(0, 3))]
    return out


def _profile_id(rng: random.Random) -> int:
    # Popular profiles get most views (Zipf-like), with a long tail. Popularity has nothing to do
    # with the id: rank r is mapped to an id by a fixed permutation (multiplication modulo a prime).
    rank = min(PROFILES, int(math.exp(rng.random() * math.log(PROFILES))))
    return (rank * 7_919 * 104_729) % 399_989 + 1


def _human_session(rng: random.Random, ip: str, ua: str, start: float, heavy: bool = False) -> list[Line]:
    out: list[Line] = []
    t = start
    warm = rng.random() < 0.25
    from_search = rng.random() < 0.3
    pages = rng.randint(60, 250) if heavy else max(1, int(rng.lognormvariate(1.8, 0.8)))
    first = True
    referer = rng.choice(_REFERERS_OUT)
    for i in range(pages):
        roll = rng.random()
        if i == 0:
            target = f"/users/{_profile_id(rng)}" if from_search else "/"
        elif (heavy and roll < 0.6) or roll < 0.4:
            target = f"/users/{_profile_id(rng)}"
        elif roll < 0.65:
            target = f"/search?q={rng.choice(_WORDS)}+{rng.choice(_WORDS)}"
        elif roll < 0.85:
            target = "/feed"
        else:
            target = rng.choice(["/", "/about", "/settings", "/messages", f"/groups/{rng.randint(1, 300)}"])
        status = 404 if target.startswith("/users/") and rng.random() < 0.01 else 200
        out.append((t, ip, "GET", target, status, rng.randint(4000, 30000), referer, ua))
        for asset in _assets(rng, first and not warm):
            t += rng.uniform(0.01, 0.4)
            out.append((t, ip, "GET", asset, 200, rng.randint(300, 90000), SITE + target, ua))
        first = False
        referer = SITE + target
        t += rng.lognormvariate(2.5, 1.0) + 1.0
    return out


def _crawler(rng: random.Random, ips: list[str], ua: str, start: float, n: int) -> list[Line]:
    out: list[Line] = []
    t = start
    for _ in range(n):
        target = (
            f"/users/{rng.randint(1, PROFILES)}" if rng.random() < 0.8 else f"/groups/{rng.randint(1, 300)}"
        )
        out.append((t, rng.choice(ips), "GET", target, 200, rng.randint(4000, 30000), "", ua))
        t += rng.expovariate(1 / 6.0)
    return out


def _walk(rng: random.Random, n: int) -> Iterator[int]:
    """The ids a scraper asks for: a sequential walk from somewhere, or a shuffled set."""
    if rng.random() < 0.5:
        begin = rng.randint(1, PROFILES - n - 1)
        stride = rng.choice((1, 1, 1, 2, 3))
        yield from (begin + i * stride for i in range(n))
    else:
        yield from rng.sample(range(1, PROFILES + 1), n)


def _scrape(
    rng: random.Random,
    ip_for: object,
    ua_for: object,
    start: float,
    n: int,
    gap: float,
    assets: float,
    *,
    warm_up: bool = False,
    referer: str = "",
) -> list[Line]:
    """``n`` record requests; ``ip_for(i)``/``ua_for(i)`` pick the address and user agent.

    ``warm_up``: each new address first fetches the home page (as tools that collect cookies
    do); ``referer``: a fixed referer sent with every request (a spoofing habit)."""
    out: list[Line] = []
    t = start
    seen: set[str] = set()
    for i, pid in enumerate(_walk(rng, n)):
        ip = ip_for(i)  # type: ignore[operator]
        ua = ua_for(i)  # type: ignore[operator]
        if warm_up and ip not in seen:
            seen.add(ip)
            out.append((t, ip, "GET", "/", 200, rng.randint(9000, 14000), referer, ua))
            t += rng.uniform(0.1, 0.6) * gap
        target = f"/search?q={rng.choice(_WORDS)}" if rng.random() < 0.05 else f"/users/{pid}"
        out.append((t, ip, "GET", target, 200, rng.randint(4000, 30000), referer, ua))
        if assets and rng.random() < assets:
            for asset in _assets(rng, True)[:2]:
                out.append((t + 0.05, ip, "GET", asset, 200, 5000, SITE + target, ua))
        t += rng.uniform(0.2, 1.8) * gap
    return out


def generate(spec: LogSpec) -> tuple[list[Line], dict[str, str]]:
    """All lines (sorted by time) and the label of every address."""
    rng = random.Random(spec.seed)
    ips = _Ips(rng)
    scale = spec.lines / 1_000_000
    lines: list[Line] = []
    labels: dict[str, str] = {}

    def when() -> float:
        # More traffic by day than by night.
        while True:
            t = rng.uniform(0, DAY)
            if rng.random() < 0.5 + 0.5 * math.sin(math.pi * t / DAY):
                return DAY_START + t

    # --- scrapers --------------------------------------------------------------------------------
    for _ in range(max(1, round(6 * scale))):
        ip = ips.datacenter()
        labels[ip] = "single_ip"
        ua = rng.choice(_LIB_UAS + BROWSERS[:10])
        lines += _scrape(rng, lambda i, ip=ip: ip, lambda i, ua=ua: ua, when(), rng.randint(3000, 15000),
                         rng.uniform(0.3, 3.0), 0.0)  # fmt: skip
    for _ in range(max(1, round(3 * scale))):
        head = ips.datacenter_24()
        pool = [f"{head}.{h}" for h in rng.sample(range(2, 254), rng.randint(30, 200))]
        for ip in pool:
            ips.used.add(ip)
            labels[ip] = "subnet"
        ua = rng.choice([*BROWSERS, "Scrapy/2.11.0 (+https://scrapy.org)"])
        lines += _scrape(rng, lambda i, pool=pool: rng.choice(pool), lambda i, ua=ua: ua, when(),
                         rng.randint(8000, 25000), rng.uniform(0.3, 1.5), 0.0)  # fmt: skip
    for _ in range(max(1, round(3 * scale))):
        n = rng.randint(10000, 40000)
        pool = [ips.residential() for _ in range(rng.randint(1500, 5000))]
        for ip in pool:
            labels[ip] = "rotating"
        uas = rng.sample(BROWSERS, rng.choice((1, 1, 2, 3)))
        per_ip = rng.randint(2, 12)
        lines += _scrape(
            rng,
            lambda i, pool=pool, per_ip=per_ip: pool[(i // per_ip) % len(pool)],
            lambda i, uas=uas, per_ip=per_ip, pool=pool: uas[hash((i // per_ip) % len(pool)) % len(uas)],
            when() - 3 * 3600,
            n,
            rng.uniform(0.3, 1.2),
            rng.choice((0.0, 0.02, 0.05)),
            warm_up=rng.random() < 0.4,
            referer=rng.choice(("", "", SITE + "/", "https://www.google.com/")),
        )
    for _ in range(max(2, round(8 * scale))):
        ua = rng.choice(_BOT_UAS)
        pool = [ips.datacenter() for _ in range(rng.choice((1, 1, 2, 4)))]
        for ip in pool:
            labels[ip] = "bot_ua"
        lines += _scrape(rng, lambda i, pool=pool: rng.choice(pool), lambda i, ua=ua: ua, when(),
                         rng.randint(200, 6000), rng.uniform(1.0, 8.0), 0.0)  # fmt: skip
    for _ in range(max(1, round(3 * scale))):
        ua = _HEADLESS.format(v=rng.randint(120, 131))
        pool = [ips.datacenter() for _ in range(rng.randint(1, 3))]
        for ip in pool:
            labels[ip] = "headless"
        lines += _scrape(rng, lambda i, pool=pool: rng.choice(pool), lambda i, ua=ua: ua, when(),
                         rng.randint(1500, 8000), rng.uniform(0.5, 3.0), 1.0)  # fmt: skip

    # --- verified crawlers ------------------------------------------------------------------------
    for bot, ua, n in (("googlebot", _GOOGLEBOT, 40000), ("bingbot", _BINGBOT, 15000)):
        pool = [ips.crawler(bot) for _ in range(rng.randint(20, 60))]
        for ip in pool:
            labels[ip] = "verified_bot"
        lines += _crawler(rng, pool, ua, DAY_START + rng.uniform(0, 3600), int(n * scale))

    # --- people -----------------------------------------------------------------------------------
    nat = [ips.residential() for _ in range(max(2, round(40 * scale)))]
    for ip in nat:
        labels[ip] = "human"
    target = spec.lines
    while len(lines) < target:
        roll = rng.random()
        if roll < 0.15:
            ip = rng.choice(nat)
        elif roll < 0.25:
            ip = ips.ipv6()
        else:
            ip = ips.residential()
        labels.setdefault(ip, "human")
        ua = rng.choice(BROWSERS)
        for _ in range(1 if rng.random() < 0.8 else rng.randint(2, 4)):
            lines += _human_session(rng, ip, ua, when(), heavy=rng.random() < 0.01)
    lines = [x for x in lines if DAY_START <= x[0] < DAY_START + DAY + 3 * 3600]
    lines.sort(key=lambda x: x[0])
    return lines[: spec.lines], labels


@cache
def _stamp(second: int) -> str:
    import time

    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second))


def write(spec: LogSpec, path: Path) -> dict[str, str]:
    """Write the log (gzip when ``path`` ends in .gz) and return the address labels."""
    lines, labels = generate(spec)
    present = {x[1] for x in lines}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        buf = []
        for t, ip, method, target, status, size, referer, ua in lines:
            buf.append(
                f'{ip} - - [{_stamp(int(t))}] "{method} {target} HTTP/1.1" {status} {size} '
                f'"{referer or "-"}" "{ua}"\n'
            )
            if len(buf) >= 10000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))
    return {ip: kind for ip, kind in labels.items() if ip in present}


def write_labels(labels: dict[str, str], path: Path) -> None:
    path.write_text(json.dumps(labels, sort_keys=True))
