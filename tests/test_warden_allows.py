"""Operator allows through the Warden: stored, audited, enforced, recorded, picked up by other
processes, lifted. Real stores (memory and SQLite files), no doubles."""

import pytest

from scrapewarden.core.decision import Action
from scrapewarden.core.policy import Policy, ProtectedResource
from scrapewarden.state.base import Allow
from scrapewarden.state.url import open_state
from scrapewarden.warden import Warden

T0 = 1_800_000_000.0
BOT = [(b"user-agent", b"python-requests/2.32.3"), (b"accept", b"*/*")]
SCRAPER = "203.0.113.9"
FIREFOX = [
    (b"host", b"site.example"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-GB,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br"),
]


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def policy() -> Policy:
    return Policy(protected=[ProtectedResource(pattern="/users/{id}")])


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/state.db"
    s = open_state(url)
    yield s
    s.close()


def ask(warden, clock, ip=SCRAPER, path="/users/1", account=None):
    clock.now += 0.5
    return warden.decide_http(peer=ip, method="GET", path=path, query="", headers=BOT, account_id=account)


def test_allow_is_stored_audited_enforced_and_recorded(store):
    clock = Clock()
    warden = Warden(policy(), state=store, clock=clock)
    warden.ban("ip", SCRAPER, ttl=None, reason="scraping", by="ana")
    assert ask(warden, clock).action is Action.BLOCK
    stored = warden.allow("ip", SCRAPER, ttl=3600, reason="contracted crawl [by ana]", by="ana")
    assert stored == Allow("ip", SCRAPER, clock.now, clock.now + 3600, "contracted crawl [by ana]", "ana")
    assert store.get_allow("ip", SCRAPER) == stored
    (entry,) = [e for e in store.audit_entries() if e.action == "allow.add"]
    assert (entry.actor, entry.target) == ("ana", f"ip:{SCRAPER}")
    assert entry.details == {"expires": clock.now + 3600, "reason": "contracted crawl [by ana]"}

    d = ask(warden, clock, path="/users/2")
    assert d.action is Action.ALLOW and d.allow_key == f"ip:{SCRAPER}" and d.overridden is Action.BLOCK
    store.flush()
    # The request the allow let through is in the trail, with why it passed and what it overrode.
    last = store.events(limit=1000)[-1]
    assert last.action == "allow" and last.path == "/users/2"
    assert last.reasons[0] == "allowed by an operator (ip), overriding block"
    assert "banned (ip)" in last.reasons and any("bot user agent" in r for r in last.reasons)

    assert warden.lift_allow("ip", SCRAPER, by="ana") is True
    assert [e.action for e in store.audit_entries()][-1] == "allow.remove"
    assert store.audit_entries()[-1].actor == "ana"
    assert ask(warden, clock, path="/users/3").action is Action.BLOCK  # the ban holds again
    assert warden.lift_allow("ip", SCRAPER, by="ana") is False  # nothing left to lift, no entry
    assert [e.action for e in store.audit_entries()].count("allow.remove") == 1
    warden.close()


def test_an_allow_that_overrides_nothing_records_nothing(store):
    clock = Clock()
    warden = Warden(policy(), state=store, clock=clock)
    warden.allow("ip", "192.0.2.1", ttl=None, by="ana")
    d = warden.decide_http(peer="192.0.2.1", method="GET", path="/", query="", headers=FIREFOX)
    assert d.action is Action.ALLOW and d.allow_key == "ip:192.0.2.1" and d.overridden is Action.ALLOW
    store.flush()
    assert store.events(limit=100) == []
    warden.close()


def test_allow_expires(store):
    clock = Clock()
    warden = Warden(policy(), state=store, clock=clock)
    warden.allow("ip", SCRAPER, ttl=60, by="ana")
    assert ask(warden, clock).action is Action.ALLOW
    clock.now += 61
    assert ask(warden, clock, path="/users/2").action is not Action.ALLOW
    assert store.list_allows(clock.now) == []
    warden.close()


def test_allows_added_elsewhere_take_effect_and_lifts_too(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    clock = Clock()
    warden = Warden(policy(), state=url, clock=clock)
    assert ask(warden, clock).action is not Action.ALLOW
    other = Warden(policy(), state=url, clock=clock)  # the dashboard's, or the CLI's store
    other.allow("account", "partner-7", ttl=None, reason="contract 12", by="ana")
    # Until the serving Warden reloads, it does not know; after, the account passes even from
    # the address the bot user agent made suspicious.
    assert ask(warden, clock, account="partner-7").action is not Action.ALLOW
    clock.now += 5
    d = ask(warden, clock, account="partner-7")
    assert d.action is Action.ALLOW and d.allow_key == "account:partner-7"
    assert ask(warden, clock, account="someone-else").action is not Action.ALLOW
    assert other.lift_allow("account", "partner-7", by="ana") is True
    clock.now += 5
    assert ask(warden, clock, account="partner-7").action is not Action.ALLOW
    other.close()
    warden.close()


def test_metrics_count_the_operator_allow_and_what_it_overrode(store):
    from scrapewarden.metrics import TALLY

    clock = Clock()
    warden = Warden(policy(), state=store, clock=clock)
    warden.ban("ip", SCRAPER, ttl=None, by="ana")
    warden.allow("ip", SCRAPER, ttl=None, by="ana")
    before = TALLY.snapshot()
    for n in range(3):
        ask(warden, clock, path=f"/users/{n}")
    after = TALLY.snapshot()
    assert after.actions[Action.ALLOW] - before.actions[Action.ALLOW] == 3
    assert after.findings["operator_allow"] - before.findings.get("operator_allow", 0) == 3
    assert after.findings["ban"] - before.findings.get("ban", 0) == 3  # still seen, for the record
    warden.close()
