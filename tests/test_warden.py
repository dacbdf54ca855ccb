"""The Warden: engine + store + clock. Real stores (memory and SQLite files), no doubles."""

import pytest

from scrapewarden.core.decision import Action
from scrapewarden.core.policy import Policy, ProtectedResource
from scrapewarden.state.base import Ban
from scrapewarden.state.url import open_state
from scrapewarden.warden import Warden

T0 = 1_800_000_000.0
UA = [(b"user-agent", b"python-requests/2.32.3"), (b"accept", b"*/*")]
FIREFOX = [
    (b"host", b"site.example"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-GB,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"connection", b"keep-alive"),
]


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def policy(**kw):
    return Policy(protected=[ProtectedResource(pattern="/users/{id}")], **kw)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/state.db"
    s = open_state(url)
    yield s
    s.close()


def walk(warden, clock, ip="203.0.113.9", n=400):
    out = []
    for i in range(1, n + 1):
        clock.now += 0.5
        out.append(warden.decide_http(peer=ip, method="GET", path=f"/users/{i}", query="", headers=UA))
    return out


def test_refusals_are_recorded_as_pseudonymised_events(store):
    clock = Clock()
    warden = Warden(policy(privacy={"record_allowed_share": 0}), state=store, clock=clock)
    decisions = walk(warden, clock, n=30)
    assert any(d.action is not Action.ALLOW for d in decisions)
    store.flush()
    events = store.events(limit=1000)
    assert events and all(e.action != "allow" for e in events)
    assert all("203.0.113.9" not in e.ip and e.ip.startswith("ip~") for e in events)
    assert all(e.reasons for e in events)
    # The same address always maps to the same pseudonym (the key lives in the store).
    assert len({e.ip for e in events}) == 1
    again = Warden(policy(), state=store, clock=clock)
    assert again.pseudonymizer.ip("203.0.113.9") == events[0].ip


def test_pseudonymisation_can_be_turned_off(store):
    clock = Clock()
    warden = Warden(policy(privacy={"pseudonymize": False}), state=store, clock=clock)
    walk(warden, clock, n=30)
    store.flush()
    assert store.events(limit=5)[0].ip == "203.0.113.9"


def test_repeat_offenders_get_stored_escalating_bans(store):
    clock = Clock()
    warden = Warden(policy(), state=store, clock=clock)
    walk(warden, clock)
    store.flush()
    first = store.get_ban("ip", "203.0.113.9")
    assert first is not None and first.source == "auto"
    base = Policy().actions.bans.ttl_seconds
    assert first.expires - first.created == pytest.approx(base)

    clock.now = first.expires + 1  # the ban ran out; the scraper comes back
    warden2 = Warden(policy(), state=store, clock=clock)
    walk(warden2, clock)
    store.flush()
    second = store.get_ban("ip", "203.0.113.9")
    assert second.offences == 2
    assert second.expires - second.created == pytest.approx(base * Policy().actions.bans.factor)


def test_bans_added_elsewhere_take_effect(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    clock = Clock()
    warden = Warden(policy(), state=url, clock=clock)
    ok = warden.decide_http(peer="192.0.2.50", method="GET", path="/", query="", headers=FIREFOX)
    assert ok.action is Action.ALLOW
    cli_store = open_state(url)  # e.g. `scrapewarden ban add` in another process
    cli_store.add_ban(
        Ban(kind="network", value="192.0.2.0/24", created=clock.now, expires=None, reason="test")
    )
    cli_store.flush()
    clock.now += 5  # past the reload interval
    d = warden.decide_http(peer="192.0.2.50", method="GET", path="/", query="", headers=FIREFOX)
    assert d.action is Action.BLOCK and d.ban_key == "network:192.0.2.0/24"
    cli_store.remove_ban("network", "192.0.2.0/24")
    cli_store.flush()
    clock.now += 5
    assert (
        warden.decide_http(peer="192.0.2.50", method="GET", path="/", query="", headers=FIREFOX).action
        is Action.ALLOW
    )
    cli_store.close()
    warden.close()


def test_observe_mode_records_would_be_actions_without_bans(store):
    clock = Clock()
    warden = Warden(policy(mode="observe"), state=store, clock=clock)
    decisions = walk(warden, clock)
    assert all(d.effective is Action.ALLOW for d in decisions)
    store.flush()
    assert store.events(limit=5) and all(not e.enforced for e in store.events(limit=5))
    assert store.list_bans() == []


def test_the_policy_state_key_opens_the_store_unless_the_flag_or_environment_names_one(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("SCRAPEWARDEN_STATE", raising=False)
    from_policy = f"sqlite:///{tmp_path}/policy.db"
    warden = Warden(policy(state=from_policy))
    assert warden.store.url == from_policy
    warden.close()
    monkeypatch.setenv("SCRAPEWARDEN_STATE", f"sqlite:///{tmp_path}/env.db")
    warden = Warden(policy(state=from_policy))
    assert warden.store.url == f"sqlite:///{tmp_path}/env.db"
    warden.close()
    warden = Warden(policy(state=from_policy), state="memory://")
    assert warden.store.url == "memory://"
    warden.close()


def test_every_request_of_a_sampled_address_is_recorded_tagged(store):
    clock = Clock()
    warden = Warden(policy(privacy={"record_allowed_share": 0.5}), state=store, clock=clock)
    people = [f"198.51.100.{i}" for i in range(1, 41)]
    for ip in people:
        for i in range(3):  # three pages each: allowed
            clock.now += 1
            d = warden.decide_http(peer=ip, method="GET", path=f"/about/{i}", query="", headers=FIREFOX)
            assert d.action is Action.ALLOW
    walk(warden, clock, ip="203.0.113.9", n=30)  # a scraper: refused, recorded whatever the sample
    store.flush()
    events = store.events(limit=10_000)
    allowed = [e for e in events if e.action == "allow"]
    sampled = {e.ip for e in allowed}
    # About half the people, each with all three of their requests, tagged with the share.
    assert 5 < len(sampled) < 35
    assert all(sum(e.ip == ip for e in allowed) == 3 for ip in sampled)
    assert all(e.reasons[-1] == "sampled share=0.5" for e in allowed)
    assert all(e.ip.startswith("ip~") for e in allowed)
    # Which people: the keyed hash of their address pseudonym, as the replay will find them.
    from scrapewarden.core.sampling import in_sample

    p = warden.pseudonymizer
    assert sampled == {p.ip(ip) for ip in people if in_sample(p, p.ip(ip), 0.5)}
    refused = [e for e in events if e.action != "allow"]
    scraper_sampled = in_sample(p, p.ip("203.0.113.9"), 0.5)
    assert refused and all(("sampled share=0.5" in e.reasons) == scraper_sampled for e in refused)
    warden.close()


def test_no_allowed_request_is_recorded_at_share_zero(store):
    clock = Clock()
    warden = Warden(policy(privacy={"record_allowed_share": 0}), state=store, clock=clock)
    for i in range(1, 30):
        clock.now += 1
        warden.decide_http(peer=f"198.51.100.{i}", method="GET", path="/", query="", headers=FIREFOX)
    store.flush()
    assert store.events(limit=100) == []
    warden.close()
