"""What the pages compute: searches over pseudonymised events, series, top actors, SVG charts."""

from __future__ import annotations

import pytest

from scrapewarden.core.pseudonym import Pseudonymizer
from scrapewarden.dashboard import charts, views
from scrapewarden.dashboard.bans import BanInputError, check_target, export, parse_ttl
from scrapewarden.state.base import Ban, Event
from scrapewarden.state.memory import MemoryStore

NOW = 1_800_000_000.0
KEYED = Pseudonymizer(b"k" * 32)
PLAIN = Pseudonymizer(None)


def _event(ts: float, ip: str, action: str = "block", **kw: object) -> Event:
    return Event(ts=ts, action=action, score=90, enforced=True, ip=ip, method="GET", path="/x", **kw)  # type: ignore[arg-type]


def test_address_search_pseudonymises_what_was_typed() -> None:
    search = views.search_keys("ip", " 203.0.113.7 ", KEYED)
    assert search.keys == {KEYED.ip("203.0.113.7")} and search.raw == "203.0.113.7"
    assert views.matches(search, _event(NOW, KEYED.ip("203.0.113.7")))
    assert not views.matches(search, _event(NOW, KEYED.ip("203.0.113.8")))
    # IPv4-mapped IPv6 is the same client.
    assert views.search_keys("ip", "::ffff:203.0.113.7", KEYED).keys == search.keys
    # A pseudonym copied from the overview finds the events, but the real value stays unknown.
    by_pseudonym = views.search_keys("ip", KEYED.ip("203.0.113.7"), KEYED)
    assert by_pseudonym.keys == search.keys and by_pseudonym.raw is None


def test_network_search_with_and_without_pseudonyms() -> None:
    keyed = views.search_keys("network", "192.0.2.9/24", KEYED)
    assert keyed.typed == "192.0.2.0/24" and len(keyed.keys) == 256
    assert views.matches(keyed, _event(NOW, KEYED.ip("192.0.2.200")))
    assert not views.matches(keyed, _event(NOW, KEYED.ip("192.0.3.1")))
    plain = views.search_keys("network", "192.0.2.0/24", PLAIN)
    assert views.matches(plain, _event(NOW, "192.0.2.200"))
    assert not views.matches(plain, _event(NOW, "not an address"))
    with pytest.raises(views.SearchError, match="address by address"):
        views.search_keys("network", "2001:db8::/48", KEYED)


@pytest.mark.parametrize(
    ("kind", "typed"),
    [("ip", "nope"), ("network", "10.0.0.0/33"), ("ip", ""), ("planet", "x"), ("ip", "1" * 600)],
)
def test_bad_searches_say_why(kind: str, typed: str) -> None:
    with pytest.raises(views.SearchError):
        views.search_keys(kind, typed, KEYED)


def test_account_session_and_fingerprint_searches() -> None:
    event = _event(
        NOW,
        "ip~x",
        account=KEYED.account("acct-1"),
        session=KEYED.generic("session", "s1"),
        fingerprint="fp1",
    )
    assert views.matches(views.search_keys("account", "acct-1", KEYED), event)
    assert views.matches(views.search_keys("session", "s1", KEYED), event)
    assert views.matches(views.search_keys("fingerprint", "fp1", KEYED), event)
    assert not views.matches(views.search_keys("account", "acct-2", KEYED), event)


def test_series_and_top_actors() -> None:
    events = [
        _event(NOW - 3500, "a", "block"),
        _event(NOW - 3500, "a", "challenge"),
        _event(NOW - 10, "b", "throttle"),
        _event(NOW - 10, "b", "challenge_passed"),
        _event(NOW - 7200, "c", "block"),  # outside the window
    ]
    s = views.series(events, start=NOW - 3600, end=NOW, buckets=6)
    assert s.actions == ["throttle", "challenge", "block", "challenge_passed"]
    assert s.buckets[0] == {"block": 1, "challenge": 1}
    assert s.buckets[5] == {"throttle": 1, "challenge_passed": 1}
    top = views.top_actors(events, since=NOW - 3600)
    assert [(r.key, r.events, r.worst) for r in top["ip"]] == [("a", 2, "block"), ("b", 1, "throttle")]


def test_overview_reads_the_store() -> None:
    store = MemoryStore()
    for i in range(5):
        store.record_event(_event(NOW - i, "a", "challenge"))
    store.record_event(_event(NOW - 1, "a", "challenge_passed", reasons=["pow"]))
    data = views.overview(store, now=NOW + 1, hours=1)
    assert data.summary.challenges == 5 and data.summary.solve_rate == pytest.approx(0.2)
    assert not data.truncated


def test_chart_is_svg_with_nothing_unescaped() -> None:
    svg = charts.stacked_bars([{"block": 2, "<b>": 1}], [NOW], ["block", "<b>"], title='"><script>')
    assert svg.startswith("<svg") and "<script>" not in svg and "&lt;b&gt;" in svg
    assert svg.count("<rect") == 2
    empty = charts.stacked_bars([], [], [], title="nothing")
    assert "<rect" not in empty


def test_ban_targets_and_durations() -> None:
    assert check_target("ip", " ::ffff:192.0.2.1 ") == ("ip", "192.0.2.1")
    assert check_target("network", "192.0.2.7/24") == ("network", "192.0.2.0/24")
    assert check_target("account", "acct 7") == ("account", "acct 7")
    for kind, value in (
        ("ip", "x"),
        ("network", "x/99"),
        ("account", "a\x1b[2J"),
        ("planet", "x"),
        ("session", ""),
    ):
        with pytest.raises(BanInputError):
            check_target(kind, value)
    assert parse_ttl("1h30m") == 5400 and parse_ttl("0") is None and parse_ttl("") is None
    with pytest.raises(BanInputError):
        parse_ttl("soon")


def test_export_holds_active_addresses_only() -> None:
    bans = [
        Ban("ip", "192.0.2.1", NOW, NOW + 60),
        Ban("ip", "192.0.2.9", NOW - 100, NOW - 1),  # expired
        Ban("account", "acct", NOW, None),
    ]
    body, media = export(bans, "nginx", now=NOW)
    assert body.splitlines()[1:] == ["deny 192.0.2.1/32;"] and media.startswith("text/plain")
    body, media = export(bans, "json", now=NOW)
    assert media == "application/json" and '"acct"' in body
    with pytest.raises(BanInputError):
        export(bans, "exe", now=NOW)
