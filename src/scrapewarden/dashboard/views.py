"""What the pages show, computed from the event trail and the bans in the state store.

The store records every non-allow decision (and every checked challenge answer) as an event;
allowed requests are not recorded, so the figures here are *decisions taken*, not traffic
(requests per second come from the metrics endpoint). At most ``MAX_EVENTS`` of the newest
events are read per page view, which bounds the cost of a view on a busy site; the pages say
when the window was cut short.

Addresses, accounts and sessions in events are keyed pseudonyms when the policy pseudonymises
(the default). A search therefore pseudonymises what the operator typed with the same key the
Warden uses, and compares pseudonyms; a network search pseudonymises every address of the
network (up to ``MAX_NETWORK_ADDRESSES``).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..core.pseudonym import Pseudonymizer
from ..core.sampling import sample_only
from ..state.base import Allow, Ban, Event, StateStore
from ..state.summary import CHALLENGE_FAILED, CHALLENGE_PASSED, Summary, summarize
from .overview_figures import Campaign, RecordFigures, active_campaigns, record_figures

MAX_EVENTS = 50_000
MAX_NETWORK_ADDRESSES = 65_536
ACTION_ORDER = ("throttle", "challenge", "block", CHALLENGE_PASSED, CHALLENGE_FAILED)
ACTOR_KINDS = ("ip", "network", "account", "session", "fingerprint")
_SEVERITY = {"throttle": 1, "challenge": 2, "block": 3}


class SearchError(ValueError):
    """A search the events cannot answer (bad address, a network too large...)."""


def recent_events(store: StateStore, limit: int = MAX_EVENTS) -> list[Event]:
    """The newest ``limit`` events, oldest first, from any store."""
    fast = getattr(store, "recent_events", None)
    if callable(fast):
        result: list[Event] = fast(limit)
        return result
    kept: list[Event] = []
    since = 0
    while page := store.events(since_id=since, limit=1000):
        kept = (kept + page)[-limit:]
        since = page[-1].id or since
    return kept


def action_label(event: Event) -> str:
    return event.action if event.enforced else f"{event.action}(observe)"


@dataclass(slots=True)
class Series:
    starts: list[float]
    buckets: list[Counter[str]]
    actions: list[str]


def series(events: Iterable[Event], *, start: float, end: float, buckets: int = 48) -> Series:
    """Events per action in ``buckets`` equal slices of [start, end)."""
    width = (end - start) / buckets
    counts: list[Counter[str]] = [Counter() for _ in range(buckets)]
    seen: set[str] = set()
    for event in events:
        if not start <= event.ts < end or sample_only(event.action, event.reasons):
            continue  # sampled allowed requests: a sample, not a count
        label = action_label(event)
        counts[min(buckets - 1, int((event.ts - start) / width))][label] += 1
        seen.add(label)
    known = [a for a in ACTION_ORDER if a in seen]
    others = sorted(seen - set(ACTION_ORDER))
    return Series([start + i * width for i in range(buckets)], counts, known + others)


@dataclass(slots=True)
class ActorRow:
    kind: str
    key: str
    events: int = 0
    last_ts: float = 0.0
    worst: str = ""
    actions: Counter[str] = field(default_factory=Counter)


def top_actors(events: Iterable[Event], *, since: float, limit: int = 10) -> dict[str, list[ActorRow]]:
    """Per actor kind (address, account, fingerprint), the actors with the most decisions."""
    tables: dict[str, dict[str, ActorRow]] = {"ip": {}, "account": {}, "fingerprint": {}}
    for event in events:
        if event.ts < since or event.action in (CHALLENGE_PASSED, CHALLENGE_FAILED) or sample_only(
            event.action, event.reasons
        ):
            continue
        for kind, key in (("ip", event.ip), ("account", event.account), ("fingerprint", event.fingerprint)):
            if not key:
                continue
            row = tables[kind].get(key)
            if row is None:
                row = tables[kind][key] = ActorRow(kind, key)
            row.events += 1
            row.last_ts = max(row.last_ts, event.ts)
            row.actions[event.action] += 1
            if _SEVERITY.get(event.action, 0) > _SEVERITY.get(row.worst, 0):
                row.worst = event.action
    return {
        kind: sorted(rows.values(), key=lambda r: (-r.events, -r.last_ts, r.key))[:limit]
        for kind, rows in tables.items()
    }


@dataclass(slots=True)
class Overview:
    summary: Summary
    series: Series
    actors: dict[str, list[ActorRow]]
    scanned: int
    truncated: bool
    """True when more events fell in the window than were read."""
    campaigns: list[Campaign] = field(default_factory=list)
    """Open incidents active in the window (``overview_figures``)."""
    records: RecordFigures | None = None
    """Records protected vs exposed in the window (``overview_figures``)."""


BUCKET_SECONDS = {1: 60, 6: 300, 24: 900, 168: 7200}
"""Bar width per window (hours): 60 bars of a minute for the last hour, 72 of five minutes for
6 h, 96 of a quarter of an hour for a day, 84 of two hours for a week."""


def bucket_seconds(hours: float) -> int:
    """The bar width for a window: the one chosen for it, else about 60 bars in whole minutes."""
    chosen = BUCKET_SECONDS.get(int(hours)) if hours == int(hours) else None
    return chosen or max(60, round(hours * 3600 / 60 / 60) * 60)


def aligned_window(now: float, hours: float) -> tuple[float, float, int]:
    """(start, end, bars) for the chart: ``hours`` of bars of :func:`bucket_seconds`, on whole
    multiples of their width (so that a bar keeps its place from one refresh to the next), the
    last one holding ``now`` (the window's first minutes, less than a bar, are not drawn)."""
    width = bucket_seconds(hours)
    bars = max(1, -(-int(hours * 3600) // width))
    end = (now // width + 1) * width
    return end - bars * width, end, bars


def overview(store: StateStore, *, now: float, hours: float) -> Overview:
    events = recent_events(store)
    incidents = store.list_incidents()
    since = now - hours * 3600
    truncated = len(events) >= MAX_EVENTS and bool(events) and events[0].ts > since
    start, end, bars = aligned_window(now, hours)
    return Overview(
        summary=summarize(events, since),
        series=series(events, start=start, end=end, buckets=bars),
        actors=top_actors(events, since=since),
        scanned=len(events),
        truncated=truncated,
        campaigns=active_campaigns(incidents, since=since),
        records=record_figures(events, incidents, since=since),
    )


@dataclass(slots=True)
class Search:
    kind: str
    typed: str
    keys: frozenset[str]
    """What the events hold for this actor (pseudonyms, or the values themselves)."""
    raw: str | None
    """The actor's real value, when known (typed by the operator): what a ban needs."""
    pseudonymised: bool


def search_keys(kind: str, typed: str, pseudonyms: Pseudonymizer, *, v4_prefix: int = 24) -> Search:
    """How the events name the actor the operator typed. Raises :class:`SearchError`."""
    typed = typed.strip()
    if kind not in ACTOR_KINDS:
        raise SearchError(f"unknown actor kind {kind!r}")
    if not typed or len(typed) > 512:
        raise SearchError("type what to look for (at most 512 characters)")
    if kind == "fingerprint":
        # Fingerprints are hashes of header shapes, stored as they are.
        return Search(kind, typed, frozenset({typed}), typed, False)
    if kind == "network":
        try:
            net = ipaddress.ip_network(typed, strict=False)
        except ValueError:
            raise SearchError(f"{typed!r} is not a network (CIDR such as 203.0.113.0/24)") from None
        if not pseudonyms.enabled:
            return Search(kind, str(net), frozenset(), str(net), False)
        if net.num_addresses > MAX_NETWORK_ADDRESSES:
            raise SearchError(
                f"events hold address pseudonyms only, so a network is searched address by address; "
                f"{net} has {net.num_addresses} addresses (at most {MAX_NETWORK_ADDRESSES}: a /16 or "
                "a smaller IPv4 network, or an IPv6 /112)"
            )
        keys = frozenset(pseudonyms.ip(str(a)) for a in net)
        return Search(kind, str(net), keys, str(net), True)
    marker = f"{kind}~"
    if pseudonyms.enabled and typed.startswith(marker):
        # A pseudonym copied from another page: it finds the events, but the real value is unknown.
        return Search(kind, typed, frozenset({typed}), None, True)
    if kind == "ip":
        try:
            address = ipaddress.ip_address(typed)
        except ValueError:
            raise SearchError(f"{typed!r} is not an IP address") from None
        mapped = getattr(address, "ipv4_mapped", None)
        typed = str(mapped or address)
        key = pseudonyms.ip(typed)
    elif kind == "account":
        key = pseudonyms.account(typed)
    else:
        key = pseudonyms.generic("session", typed)
    return Search(kind, typed, frozenset({key}), typed, pseudonyms.enabled)


def matches(search: Search, event: Event) -> bool:
    if search.kind == "fingerprint":
        return event.fingerprint in search.keys
    if search.kind == "account":
        return event.account in search.keys
    if search.kind == "session":
        return event.session in search.keys
    if search.kind == "network" and not search.pseudonymised:
        try:
            return ipaddress.ip_address(event.ip) in ipaddress.ip_network(search.typed)
        except ValueError:
            return False
    return event.ip in search.keys


@dataclass(slots=True)
class ActorView:
    search: Search
    events: list[Event]
    """Newest first, at most ``limit``."""
    total: int
    actions: Counter[str]
    first_ts: float | None
    last_ts: float | None
    bans: list[Ban]
    allows: list[Allow] = field(default_factory=list)
    """The operator allow on this actor (in force or expired), if any."""


def actor(store: StateStore, search: Search, *, limit: int = 500) -> ActorView:
    found = [e for e in recent_events(store) if matches(search, e)]
    actions = Counter(action_label(e) for e in found)
    bans: list[Ban] = []
    allows: list[Allow] = []
    if search.raw is not None and search.kind in ("ip", "network", "account", "session", "fingerprint"):
        ban = store.get_ban(search.kind, search.raw)  # type: ignore[arg-type]
        if ban is not None:
            bans.append(ban)
        allow = store.get_allow(search.kind, search.raw)  # type: ignore[arg-type]
        if allow is not None:
            allows.append(allow)
    newest = list(reversed(found))[:limit]
    return ActorView(
        search,
        newest,
        len(found),
        actions,
        found[0].ts if found else None,
        found[-1].ts if found else None,
        bans,
        allows,
    )


def filter_bans(bans: Sequence[Ban], *, text: str = "", kind: str = "", source: str = "") -> list[Ban]:
    text = text.strip().lower()
    return [
        b
        for b in bans
        if (not kind or b.kind == kind)
        and (not source or b.source == source)
        and (not text or text in b.value.lower() or text in b.reason.lower())
    ]
