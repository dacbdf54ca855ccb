"""Live requests per second for the Overview, from the doors' Prometheus metrics.

The event trail holds only refused decisions, so traffic itself (allowed requests included)
is read from ``scrapewarden_decisions_total``, which every door counts for every decision:

* in the dashboard's own process, when it runs beside a deciding Warden (the demo): the
  process's registry (:class:`LocalSource`);
* from doors elsewhere: their ``/metrics`` endpoints, given as
  ``scrapewarden dashboard --metrics-url http://127.0.0.1:PORT/metrics`` (:class:`HttpSource`).

A rate needs two readings: each page view (the Overview refreshes itself every few seconds)
reads every source once, and the rate is the counters' growth since an earlier reading at least
:data:`MIN_GAP` seconds old, divided by the time between them. A counter that went down (the
door restarted) counts from zero again, as Prometheus's ``rate()`` does. A source that cannot
be read is reported as such, with the reason; the page still renders.

Only loopback addresses (and the hosts an operator names with ``--metrics-host``) may be read:
the dashboard must not become a way to make requests to arbitrary hosts.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

DECISIONS = "scrapewarden_decisions"
DECISIONS_SAMPLE = "scrapewarden_decisions_total"
MIN_GAP = 1.0
"""Seconds between the two readings a rate is computed from, at least (two viewers refreshing
at once would otherwise divide by a few milliseconds)."""
KEEP_SECONDS = 600.0
"""Readings older than this are forgotten: a rate is never averaged over more than this."""
KEEP_READINGS = 120
TIMEOUT = 2.0
"""Seconds to wait for one metrics endpoint: the page waits for it."""
MAX_BYTES = 4 * 1024 * 1024
"""A metrics page larger than this is refused (a door's is a few kilobytes)."""

log = logging.getLogger(__name__)


class MetricsUrlError(ValueError):
    """A ``--metrics-url`` the dashboard will not read."""


class MetricsReadError(Exception):
    """A source could not be read (not listening, not metrics, too large...)."""


def check_metrics_url(url: str, allowed_hosts: Iterable[str] = ()) -> str:
    """``url`` if it is an http(s) URL to a loopback address or to one of ``allowed_hosts``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MetricsUrlError(f"{url!r} is not an http:// or https:// URL")
    if parts.username or parts.password:
        raise MetricsUrlError(f"{url!r}: credentials in the URL are not supported")
    host = parts.hostname.lower()
    allowed = {h.strip().lower().strip("[]") for h in allowed_hosts if h.strip()}
    if host in allowed or host == "localhost" or _is_loopback(host):
        return url.strip()
    raise MetricsUrlError(
        f"{url!r}: the dashboard reads metrics from loopback addresses only; "
        f"name other hosts with --metrics-host {host}"
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def decisions_from_text(text: str) -> dict[str, float]:
    """``scrapewarden_decisions_total`` per action in a Prometheus text page.

    Raises :class:`MetricsReadError` when the text is not the exposition format or holds no
    decisions counter (a URL that is not a door's metrics)."""
    found: dict[str, float] = {}
    seen = False
    try:
        for family in text_string_to_metric_families(text):
            if family.name != DECISIONS:
                continue
            seen = True
            for sample in family.samples:
                if sample.name == DECISIONS_SAMPLE:
                    action = sample.labels.get("action", "")
                    found[action] = found.get(action, 0.0) + float(sample.value)
    except (ValueError, TypeError, IndexError) as exc:
        raise MetricsReadError(f"not Prometheus metrics ({exc})") from None
    if not seen:
        raise MetricsReadError(f"no {DECISIONS_SAMPLE} in the metrics (is it a scrapewarden door?)")
    return found


class Source(Protocol):
    name: str

    def fetch(self) -> str: ...


def read_decisions(source: Source) -> dict[str, float]:
    """``source``'s decisions per action. Whatever goes wrong (a read error, or anything a
    source raises that it should not: a reply cut short...) is a :class:`MetricsReadError`."""
    try:
        return decisions_from_text(source.fetch())
    except MetricsReadError:
        raise
    except Exception as exc:
        log.warning("metrics source %s failed: %r", source.name, exc)
        raise MetricsReadError(f"failed ({type(exc).__name__})") from None


class LocalSource:
    """This process's metrics (every Warden in a process counts into the same registry)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.name = "this process"
        self.registry = registry

    def fetch(self) -> str:
        from ..metrics_http import exposed_registry

        return generate_latest(self.registry or exposed_registry()).decode("utf-8", "replace")


def sources_for(urls: Sequence[str], hosts: Sequence[str] = (), *, local: bool = False) -> list[Source]:
    """The sources a dashboard reads: this process's metrics when ``local`` (it runs beside a
    deciding Warden), then every URL (checked: raises :class:`MetricsUrlError`)."""
    found: list[Source] = [LocalSource()] if local else []
    checked = [check_metrics_url(url, hosts) for url in urls]
    found += [HttpSource(url) for url in dict.fromkeys(checked)]  # each once: never counted twice
    return found


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead anywhere; the URL the operator checked is the one read."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


class HttpSource:
    """A door's ``/metrics`` over HTTP (the URL checked by :func:`check_metrics_url`)."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT) -> None:
        self.name = url
        self.url = url
        self.timeout = timeout

    def fetch(self) -> str:
        request = urllib.request.Request(self.url, headers={"accept": "text/plain"})
        try:
            with _OPENER.open(request, timeout=self.timeout) as reply:
                body = reply.read(MAX_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise MetricsReadError(f"answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MetricsReadError(f"unreachable ({reason})") from None
        if len(body) > MAX_BYTES:
            raise MetricsReadError(f"more than {MAX_BYTES} bytes of metrics")
        return body.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Reading:
    at: float
    """When it was read (a monotonic clock)."""
    decisions: Mapping[str, float]
    """Decisions per action since the source started counting."""


def rates_between(before: Reading, after: Reading) -> dict[str, float]:
    """Decisions per second per action from ``before`` to ``after``.

    A counter lower than before means the source restarted: its value is all it grew by."""
    span = after.at - before.at
    if span <= 0:
        raise ValueError("the readings must be in time order")
    out: dict[str, float] = {}
    for action, total in after.decisions.items():
        earlier = before.decisions.get(action, 0.0)
        grown = total - earlier if total >= earlier else total
        out[action] = grown / span
    return out


def pick_earlier(history: Sequence[Reading], now: float, min_gap: float = MIN_GAP) -> Reading | None:
    """The newest reading at least ``min_gap`` before ``now`` (None: none old enough)."""
    for reading in reversed(history):
        if now - reading.at >= min_gap:
            return reading
    return None


@dataclass(frozen=True, slots=True)
class SourceRate:
    """One source as the Overview shows it."""

    name: str
    error: str = ""
    """Why it could not be read ('' when it was)."""
    totals: Mapping[str, float] | None = None
    rates: Mapping[str, float] | None = None
    """Per action per second; None until a second reading."""
    seconds: float | None = None
    """The time the rates were measured over."""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def per_second(self) -> float | None:
        return None if self.rates is None else sum(self.rates.values())


class LiveRates:
    """Reads every source on demand and keeps recent readings to compute rates from.

    Shared by every request of a dashboard (endpoints run in worker threads), hence the lock."""

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        clock: Callable[[], float] = time.monotonic,
        min_gap: float = MIN_GAP,
    ) -> None:
        self.sources = list(sources)
        self.clock = clock
        self.min_gap = min_gap
        self._history: dict[str, deque[Reading]] = {s.name: deque(maxlen=KEEP_READINGS) for s in sources}
        self._lock = threading.Lock()

    def read(self) -> list[SourceRate]:
        return [self._read_one(source) for source in self.sources]

    def prime(self) -> None:
        """A first reading of the sources in this process (cheap), so the first page view
        already shows a rate; remote ones are first read when a page asks."""
        for source in self.sources:
            if isinstance(source, LocalSource):
                self._read_one(source)

    def _read_one(self, source: Source) -> SourceRate:
        try:
            decisions = read_decisions(source)
        except MetricsReadError as exc:
            return SourceRate(source.name, error=str(exc))
        now = self.clock()
        with self._lock:
            history = self._history[source.name]
            while history and now - history[0].at > KEEP_SECONDS:
                history.popleft()
            earlier = pick_earlier(history, now, self.min_gap)
            reading = Reading(now, decisions)
            history.append(reading)
        if earlier is None:
            return SourceRate(source.name, totals=decisions)
        return SourceRate(
            source.name, totals=decisions, rates=rates_between(earlier, reading), seconds=now - earlier.at
        )


@dataclass(frozen=True, slots=True)
class LiveFigure:
    """Every source added up, for the Overview's "requests per second"."""

    sources: list[SourceRate]
    per_second: float | None
    """All decisions (allowed included) per second over the sources read; None: not yet known."""
    by_action: dict[str, float]
    refused_share: float | None
    """Share of decisions that were not ``allow`` (None when there were none)."""


def live_figure(rates: Sequence[SourceRate]) -> LiveFigure:
    measured = [r for r in rates if r.ok and r.rates is not None]
    by_action: dict[str, float] = {}
    for r in measured:
        for action, rate in (r.rates or {}).items():
            by_action[action] = by_action.get(action, 0.0) + rate
    total = sum(by_action.values())
    refused = total - by_action.get("allow", 0.0)
    return LiveFigure(
        sources=list(rates),
        per_second=total if measured else None,
        by_action={a: r for a, r in sorted(by_action.items(), key=lambda item: -item[1])},
        refused_share=refused / total if total > 0 else None,
    )
