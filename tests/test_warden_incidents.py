"""Incidents opened by a running Warden: the right actors, exactly the records they were served,
one incident per operation, and no store write per request. Real stores (memory, SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrapewarden.core.decision import Action
from scrapewarden.core.policy import Policy, ProtectedResource
from scrapewarden.state.audit import entries, verify_store
from scrapewarden.state.url import open_state
from scrapewarden.warden import Warden

T0 = 1_800_000_000.0
FIREFOX = [
    (b"host", b"site.example"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-GB,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"connection", b"keep-alive"),
]


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def policy(**incidents: object) -> Policy:
    return Policy(
        protected=[ProtectedResource(pattern="/users/{id}")],
        incidents={"min_records": 5, **incidents},  # type: ignore[arg-type]
    )


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/state.db"


CHROME = [
    (b"host", b"site.example"),
    (
        b"user-agent",
        b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    ),
    (b"accept", b"text/html,*/*;q=0.8"),
    (b"accept-language", b"de-DE,de;q=0.9"),
]


def walk(
    warden: Warden, clock: Clock, ip: str, ids: range, headers: list[tuple[bytes, bytes]] = FIREFOX
) -> dict[int, Action]:
    """A scraper in a browser's clothes: served a few profiles, then challenged, then blocked."""
    served = {}
    for i in ids:
        clock.now += 0.5
        d = warden.decide_http(peer=ip, method="GET", path=f"/users/{i}", query="", headers=headers)
        served[i] = d.effective
    return served


def settle(warden: Warden, clock: Clock) -> None:
    """Past the interval, one more request to let the watch report, then wait for the filer."""
    clock.now += 120
    warden.decide_http(peer="192.0.2.200", method="GET", path="/", query="", headers=FIREFOX)
    warden.settle_incidents()


def test_a_blocked_scraper_opens_one_incident_naming_exactly_what_it_was_served(store_url: str) -> None:
    clock = Clock()
    store = open_state(store_url)
    warden = Warden(policy(), state=store, clock=clock)
    actions = walk(warden, clock, "203.0.113.9", range(1, 301))
    assert Action.BLOCK in actions.values()
    served = {f"profile:{i}" for i, a in actions.items() if a is Action.ALLOW}
    assert served and len(served) < 300  # some got through before the block, not all
    settle(warden, clock)

    (incident,) = store.list_incidents()
    assert incident.stage == "open" and incident.steps[0].by == "system"
    assert set(incident.records) == served and incident.records_count == len(served)
    me = warden.pseudonymizer
    assert incident.actors.ips == [me.ip("203.0.113.9")]
    assert incident.actors.networks == [me.network("203.0.113.9")]
    assert "203.0.113.9" not in str(incident.to_dict())  # pseudonymised, as the event trail
    assert incident.actors.user_agents == [FIREFOX[1][1].decode()]
    assert incident.detectors and all(h.reasons for h in incident.detectors.values())
    assert incident.samples and incident.samples[0]["path"].startswith("/users/")
    assert incident.first_seen < incident.last_seen <= T0 + 200
    # Every step is in the audit log, after the automatic ban that came first.
    actions_logged = [(e.actor, e.action) for e in entries(store)]
    assert ("system", "ban.add") in actions_logged and ("system", "incident.open") in actions_logged
    assert verify_store(store).ok
    warden.close()


def test_addresses_of_one_network_join_one_incident(store_url: str) -> None:
    clock = Clock()
    store = open_state(store_url)
    warden = Warden(policy(), state=store, clock=clock)
    walk(warden, clock, "203.0.113.9", range(1, 151))
    settle(warden, clock)
    walk(warden, clock, "203.0.113.77", range(1000, 1151))
    settle(warden, clock)
    (incident,) = store.list_incidents()
    me = warden.pseudonymizer
    assert sorted(incident.actors.ips) == sorted([me.ip("203.0.113.9"), me.ip("203.0.113.77")])
    assert any(e.action == "incident.join" for e in entries(store))
    # Another network and another client is another incident...
    walk(warden, clock, "198.51.100.5", range(2000, 2151), CHROME)
    settle(warden, clock)
    assert len(store.list_incidents()) == 2
    # ...but the first client again, from a third network, is the same campaign: it joins.
    (campaign,) = store.list_incidents()[0].campaigns
    assert campaign.startswith("fingerprint:")
    walk(warden, clock, "192.0.2.99", range(3000, 3151))
    settle(warden, clock)
    first, second = store.list_incidents()
    assert me.ip("192.0.2.99") in first.actors.ips and me.ip("192.0.2.99") not in second.actors.ips
    warden.close()


def test_a_person_reading_a_few_profiles_opens_nothing(store_url: str) -> None:
    clock = Clock()
    store = open_state(store_url)
    warden = Warden(policy(), state=store, clock=clock)
    for i in range(1, 8):
        clock.now += 20
        warden.decide_http(peer="192.0.2.10", method="GET", path=f"/users/{i}", query="", headers=FIREFOX)
    settle(warden, clock)
    assert store.list_incidents() == []
    warden.close()


def test_findings_are_written_at_most_once_per_interval(store_url: str) -> None:
    clock = Clock()
    store = open_state(store_url)
    warden = Warden(policy(interval_seconds=60), state=store, clock=clock)
    # 600 requests over 300 seconds, then the report: at most one write per 60 s (plus the last).
    walk(warden, clock, "203.0.113.9", range(1, 601))
    settle(warden, clock)
    steps = [e for e in entries(store) if e.action.startswith("incident.")]
    assert 1 <= len(steps) <= 300 / 60 + 2
    warden.close()


def test_findings_still_counting_are_filed_on_close(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    clock = Clock()
    warden = Warden(policy(interval_seconds=3600), state=url, clock=clock)
    walk(warden, clock, "203.0.113.9", range(1, 151))
    warden.close()
    store = open_state(url)
    assert len(store.list_incidents()) == 1
    store.close()


def test_incidents_can_be_turned_off(store_url: str) -> None:
    clock = Clock()
    store = open_state(store_url)
    warden = Warden(policy(enabled=False), state=store, clock=clock)
    walk(warden, clock, "203.0.113.9", range(1, 151))
    settle(warden, clock)
    assert warden.incident_watch is None and store.list_incidents() == []
    warden.close()
