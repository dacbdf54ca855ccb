"""`scrapewarden bench engine`: decisions per second of the in-process engine, every detector on.

The traffic is synthetic but shaped like a social site's: people browsing (sessions, some logged
in, assets, random profiles, several behind shared office/carrier addresses), anonymous visitors,
a search crawler, and scrapers (sequential walkers, wide random walkers, rotating addresses).
Requests are generated before the clock starts; only ``Engine.decide`` is timed. A baseline runs
in the same process on the same facts: a bare per-address sliding-window limiter (what most
Python limiters do), so the figure reads as "how much more than a plain limiter does it cost".
"""

from __future__ import annotations

import gc
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from ..core.counters import SlidingCount
from ..core.detectors.reputation import IpReputation
from ..core.facts import RequestFacts
from ..core.policy import Policy, ProtectedResource

BENCH_POLICY = Policy(
    protected=[
        ProtectedResource(pattern="/users/{id}", kind="profile"),
        ProtectedResource(pattern="/@{handle}", kind="profile"),
        ProtectedResource(pattern="/api/users/{id}", kind="profile", sensitivity=3),
        ProtectedResource(pattern="/search", query_param="q", kind="search"),
    ],
    identity={"session_cookie": "sid", "account_header": "x-account"},
)

_BROWSERS = (
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{v}.0.0.0 Safari/537.36",
            v,
        )
        for v in range(118, 131)
    ]
    + [
        (f"Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0", 0)
        for v in range(115, 128)
    ]
    + [
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            f"Version/17.{v} Safari/605.1.15",
            0,
        )
        for v in range(0, 6)
    ]
)
_LANGS = ["en-US,en;q=0.9", "en-GB,en;q=0.8", "de-DE,de;q=0.9,en;q=0.5", "fr-FR,fr;q=0.9", "es-ES,es;q=0.9"]
_GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def _browser_headers(ua: str, chromium: int, lang: str, html: bool) -> tuple[tuple[str, str], ...]:
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" if html else "*/*"
    headers = [
        ("host", "bench.example"),
        ("user-agent", ua),
        ("accept", accept),
        ("accept-language", lang),
        ("accept-encoding", "gzip, deflate, br"),
    ]
    if chromium:
        hint = f'"Chromium";v="{chromium}", "Google Chrome";v="{chromium}", "Not?A_Brand";v="99"'
        headers[1:1] = [("sec-ch-ua", hint), ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", '"Windows"')]
        headers.append(("sec-fetch-mode", "navigate" if html else "no-cors"))
    return tuple(headers)


@dataclass(slots=True)
class _Actor:
    kind: str
    ip: str
    ua: str
    chromium: int
    """Chromium major version (sends client hints), or 0."""
    lang: str
    session: str | None
    account: str | None
    created: float | None
    cursor: int = 0


def _public_ip(rng: random.Random, residential: bool = True) -> str:
    """A random public address; people's addresses avoid hosting, VPN and Tor ranges."""
    while True:
        ip = f"{rng.randint(11, 199)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if not residential or not _hosting().check(ip):
            return ip


@cache
def _hosting() -> IpReputation:
    from ..lists import ip_reputation

    return ip_reputation(Policy())


def _actors(count: int, rng: random.Random, start: float) -> list[_Actor]:
    shared = [_public_ip(rng) for _ in range(max(1, count // 200))]  # offices and carrier NAT
    actors = []
    for i in range(count):
        roll = rng.random()
        ua, chromium = rng.choice(_BROWSERS)
        lang = rng.choice(_LANGS)
        if roll < 0.70:
            ip = rng.choice(shared) if rng.random() < 0.2 else _public_ip(rng)
            logged_in = rng.random() < 0.5
            actors.append(
                _Actor(
                    "human",
                    ip,
                    ua,
                    chromium,
                    lang,
                    f"s{i}",
                    f"u{i}" if logged_in else None,
                    start - rng.uniform(3600, 86400 * 900) if logged_in else None,
                )
            )
        elif roll < 0.92:
            actors.append(_Actor("visitor", _public_ip(rng), ua, chromium, lang, None, None, None))
        elif roll < 0.94:
            actors.append(
                _Actor("bot", f"66.249.66.{rng.randint(1, 254)}", _GOOGLEBOT, 0, "", None, None, None)
            )
        else:
            actors.append(
                _Actor(
                    "scraper",
                    _public_ip(rng, residential=False),
                    rng.choice(["python-requests/2.32.3", ua]),
                    0,
                    "",
                    None,
                    None,
                    None,
                    cursor=rng.randint(1, 50000),
                )
            )
    return actors


def synthetic_requests(
    n: int, n_actors: int, seed: int = 1, start: float = 1_800_000_000.0
) -> list[RequestFacts]:
    """``n`` requests from ``n_actors`` actors over one simulated hour, in time order."""
    rng = random.Random(seed)
    actors = _actors(n_actors, rng, start)
    # Activity is skewed: a few actors send many requests (Pareto weights); each scraper sends
    # five times what a typical person does, so scrapers make up about a fifth of the requests.
    # A person's activity is capped (nobody clicks more than a few hundred pages an hour).
    weights = [
        rng.paretovariate(1.5) * 5.0 if a.kind == "scraper" else min(30.0, rng.paretovariate(1.5))
        for a in actors
    ]
    picks = rng.choices(actors, weights=weights, k=n)
    step = 3600.0 / n
    out = []
    for i, actor in enumerate(picks):
        now = start + i * step
        out.append(_request(actor, now, rng))
    return out


def _request(a: _Actor, now: float, rng: random.Random) -> RequestFacts:
    if a.kind == "scraper":
        a.cursor += 1
        headers: tuple[tuple[str, str], ...] = (
            ("host", "bench.example"),
            ("user-agent", a.ua),
            ("accept-encoding", "gzip, deflate"),
            ("accept", "*/*"),
        )
        return RequestFacts(
            now=now,
            ip=a.ip,
            path=f"/users/{a.cursor}",
            headers=headers,
            user_agent=a.ua,
            extra={"actor": a.kind},
        )
    roll = rng.random()
    if roll < 0.35 and a.kind != "bot":
        path, query, html = rng.choice(["/static/app.css", "/static/app.js", "/static/logo.png"]), "", False
    elif roll < 0.80:
        path, query, html = f"/users/{rng.randint(1, 200_000)}", "", True
    elif roll < 0.90:
        path, query, html = "/search", f"q={rng.choice(['ann', 'bob', 'chen', 'dana', 'eli'])}", True
    else:
        path, query, html = "/feed", "", True
    headers = _browser_headers(a.ua, a.chromium, a.lang, html) if a.kind != "bot" else (("user-agent", a.ua),)
    if a.session:
        headers = (*headers, ("cookie", f"sid={a.session}"))
    return RequestFacts(
        now=now,
        ip=a.ip,
        path=path,
        query=query,
        headers=headers,
        user_agent=a.ua,
        session_id=a.session,
        account_id=a.account,
        account_created=a.created,
        extra={"actor": a.kind},
    )


def _time_each(
    decide: Callable[[RequestFacts], object], requests: list[RequestFacts]
) -> tuple[float, list[int], list[object]]:
    clock = time.perf_counter_ns
    samples = []
    results = []
    started = clock()
    for facts in requests:
        t = clock()
        results.append(decide(facts))
        samples.append(clock() - t)
    return (clock() - started) / 1e9, samples, results


def _p99_us(samples: list[int]) -> float:
    ordered = sorted(samples)
    return round(ordered[int(len(ordered) * 0.99)] / 1000.0, 2)


class _PlainIpLimiter:
    """The baseline: one sliding-window counter per address, nothing else."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counters: dict[str, SlidingCount] = {}

    def decide(self, facts: RequestFacts) -> bool:
        counter = self.counters.get(facts.ip)
        if counter is None:
            counter = self.counters[facts.ip] = SlidingCount(60.0)
        return counter.add(facts.now) <= self.limit


def run(requests: int = 1_000_000, actors: int = 100_000, seed: int = 1) -> dict[str, object]:
    from ..warden import build_engine

    facts = synthetic_requests(requests, actors, seed)
    engine = build_engine(BENCH_POLICY)
    # The million pre-built requests are the harness's, not the engine's: freeze them so the
    # garbage collector does not rescan them during the timed loop (a server holds one request
    # at a time, not a million).
    gc.collect()
    gc.freeze()
    try:
        elapsed, samples, decisions = _time_each(lambda f: engine.decide(f).action, facts)
        base_elapsed, base_samples, _ = _time_each(_PlainIpLimiter(240).decide, facts)
    finally:
        gc.unfreeze()
    actions: dict[str, Counter[str]] = {}
    for f, action in zip(facts, decisions, strict=True):
        actions.setdefault(f.extra["actor"], Counter())[action.label] += 1  # type: ignore[attr-defined]
    return {
        "requests": requests,
        "actors": actors,
        "decisions_per_s": round(requests / elapsed),
        "p99_us": _p99_us(samples),
        "p50_us": round(sorted(samples)[len(samples) // 2] / 1000.0, 2),
        "baseline_plain_ip_limiter": {
            "decisions_per_s": round(requests / base_elapsed),
            "p99_us": _p99_us(base_samples),
        },
        "ratio_to_baseline": round(base_elapsed / elapsed, 3),
        "actors_tracked": engine.actor_counts(),
        "actions_by_actor_kind": {kind: dict(c) for kind, c in sorted(actions.items())},
    }
