"""One behaviour suite for every StateStore backend. A new backend adds one entry to BACKENDS."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scrapewarden.core import audit
from scrapewarden.core.audit import AuditRecord
from scrapewarden.core.incidents import Actors, Detection, advance, open_incident
from scrapewarden.core.policy import Policy, PrivacyPolicy
from scrapewarden.state.base import Ban, Event, StateStore
from scrapewarden.state.errors import StateClosedError
from scrapewarden.state.memory import MemoryStore
from scrapewarden.state.retention import apply_retention
from scrapewarden.state.sqlite import SQLiteStore
from scrapewarden.state.url import open_state


def _redis(fixture: str) -> Callable[[Path, pytest.FixtureRequest], StateStore]:
    # The server is shared by the session; a key prefix of its own keeps each test apart. These
    # tests check what the store keeps, not how fast: a deadline of 2 s (not the 20 ms default)
    # keeps a loaded machine from turning them into outage tests (those live in test_redis_store).
    def open_store(tmp: Path, request: pytest.FixtureRequest) -> StateStore:
        server = request.getfixturevalue(fixture)
        sep = "&" if "?" in server.url else "?"
        return open_state(f"{server.url}{sep}prefix=t-{uuid.uuid4().hex[:12]}&timeout=2")

    return open_store


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], StateStore]] = {
    "memory": lambda tmp, request: MemoryStore(),
    "sqlite": lambda tmp, request: SQLiteStore(tmp / "state.db"),
    "redis": _redis("redis_server"),
    "redis-cluster": _redis("redis_cluster"),
    "redis-sentinel": _redis("redis_sentinel"),
    "redis-tls": _redis("redis_tls"),
}

HOSTILE = [
    "[bold red]markup[/bold red] [link=https://evil.example]x[/link]",
    "'; DROP TABLE bans; --",
    "line\nbreak\r\ttab",
    "nul\x00inside",
    "\x1b[2J\x1b[31mansi",
    "bidi \u202egnp.exe",
    "ünïcödé 账户 Ωμέγα 🦀",
    "",
    "x" * 5000,
]

NOW = 1_700_000_000.0


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    s = BACKENDS[request.param](tmp_path, request)
    yield s
    s.close()


def ban(
    value: str = "203.0.113.7",
    *,
    kind: str = "ip",
    created: float = NOW,
    expires: float | None = None,
    **kw: object,
) -> Ban:
    return Ban(kind=kind, value=value, created=created, expires=expires, **kw)  # type: ignore[arg-type]


def event(i: int = 0, **kw: object) -> Event:
    fields: dict[str, object] = {
        "ts": NOW + i,
        "action": "block",
        "score": 85.5,
        "enforced": True,
        "ip": "ip~0123456789abcdef",
        "method": "GET",
        "path": f"/users/{i}",
    }
    fields.update(kw)
    return Event(**fields)  # type: ignore[arg-type]


# -- bans -----------------------------------------------------------------------------------


def test_add_then_get_returns_what_was_stored(store: StateStore) -> None:
    stored = store.add_ban(ban(expires=NOW + 60, reason="scraping", source="auto"))
    assert stored == Ban("ip", "203.0.113.7", NOW, NOW + 60, "scraping", 1, "auto")
    assert store.get_ban("ip", "203.0.113.7") == stored
    assert store.get_ban("ip", "203.0.113.8") is None


def test_same_value_different_kinds_are_different_bans(store: StateStore) -> None:
    store.add_ban(ban("42", kind="account", reason="a"))
    store.add_ban(ban("42", kind="session", reason="s"))
    account, session = store.get_ban("account", "42"), store.get_ban("session", "42")
    assert account is not None and account.reason == "a"
    assert session is not None and session.reason == "s"
    assert store.get_ban("fingerprint", "42") is None


def test_add_replaces_the_ban_for_the_same_actor(store: StateStore) -> None:
    store.add_ban(ban(expires=NOW + 60, reason="first"))
    store.add_ban(ban(created=NOW + 10, expires=NOW + 600, reason="second"))
    bans = store.list_bans()
    assert [(b.value, b.reason, b.expires) for b in bans] == [("203.0.113.7", "second", NOW + 600)]


def test_remove(store: StateStore) -> None:
    store.add_ban(ban())
    assert store.remove_ban("ip", "203.0.113.7") is True
    assert store.get_ban("ip", "203.0.113.7") is None
    assert store.list_bans() == []
    assert store.remove_ban("ip", "203.0.113.7") is False


def test_list_filters_expired_bans_only_when_given_now(store: StateStore) -> None:
    store.add_ban(ban("198.51.100.1", expires=NOW - 1))  # expired
    store.add_ban(ban("198.51.100.2", created=NOW + 1, expires=NOW + 3600))
    store.add_ban(ban("198.51.100.0/24", kind="network", created=NOW + 2, expires=None))
    store.add_ban(ban("198.51.100.3", created=NOW + 3, expires=NOW))  # expires exactly now: over
    assert [b.value for b in store.list_bans(NOW)] == ["198.51.100.2", "198.51.100.0/24"]
    assert len(store.list_bans()) == 4
    assert [b.value for b in store.list_bans(NOW + 7200)] == ["198.51.100.0/24"]
    # Expired bans are still readable one by one.
    expired = store.get_ban("ip", "198.51.100.1")
    assert expired is not None and not expired.active(NOW)


def test_unknown_kind_is_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="unknown ban kind"):
        store.add_ban(ban(kind="cookie"))


def test_returned_bans_are_copies(store: StateStore) -> None:
    store.add_ban(ban(reason="original"))
    got = store.get_ban("ip", "203.0.113.7")
    assert got is not None
    got.reason = "changed"
    store.list_bans()[0].reason = "changed too"
    again = store.get_ban("ip", "203.0.113.7")
    assert again is not None and again.reason == "original"


# -- offence history --------------------------------------------------------------------------


def test_prior_offences_count_expired_and_removed_bans(store: StateStore) -> None:
    assert store.prior_offences("ip", "203.0.113.7") == 0
    store.add_ban(ban(expires=NOW + 10))
    assert store.prior_offences("ip", "203.0.113.7") == 1
    store.remove_ban("ip", "203.0.113.7")
    assert store.prior_offences("ip", "203.0.113.7") == 1
    second = store.add_ban(ban(created=NOW + 100, expires=NOW + 110))
    assert second.offences == 2
    third = store.add_ban(ban(created=NOW + 500, expires=NOW + 510))  # replaces the expired one
    assert third.offences == 3
    assert store.prior_offences("ip", "203.0.113.7") == 3
    assert store.prior_offences("ip", "203.0.113.8") == 0
    assert store.prior_offences("account", "203.0.113.7") == 0


def test_prune_bans_drops_expired_bans_but_remembers_the_offence(store: StateStore) -> None:
    store.add_ban(ban(expires=NOW + 10))
    store.add_ban(ban(value="203.0.113.8", expires=NOW + 1000))
    store.add_ban(ban(value="203.0.113.9", expires=None))
    assert store.prune_bans(NOW + 20) == 1
    assert {b.value for b in store.list_bans()} == {"203.0.113.8", "203.0.113.9"}
    assert store.get_ban("ip", "203.0.113.7") is None
    assert store.prior_offences("ip", "203.0.113.7") == 1
    assert store.prune_bans(NOW + 20) == 0


def test_storing_the_same_ban_again_is_not_a_new_offence(store: StateStore) -> None:
    store.add_ban(ban(expires=NOW + 10, reason="first"))
    edited = store.add_ban(ban(expires=NOW + 20, reason="edited"))  # same created: an edit
    assert edited.offences == 1
    assert store.prior_offences("ip", "203.0.113.7") == 1


def test_offences_given_by_the_caller_are_kept_when_higher(store: StateStore) -> None:
    # The engine may know better (for example from a store that was wiped); never lower it.
    stored = store.add_ban(ban(offences=5))
    assert stored.offences == 5
    got = store.get_ban("ip", "203.0.113.7")
    assert got is not None and got.offences == 5


# -- events -----------------------------------------------------------------------------------


def test_events_round_trip_in_order_with_increasing_ids(store: StateStore) -> None:
    store.record_event(
        event(
            0,
            user_agent="curl/8",
            account="account~1",
            session="s1",
            fingerprint="fp",
            reasons=["rate: 300/min", "datacenter"],
            record="profile:7",
            enforced=False,
        )
    )
    for i in range(1, 5):
        store.record_event(event(i))
    store.flush()
    got = store.events()
    assert [e.path for e in got] == [f"/users/{i}" for i in range(5)]
    ids = [e.id for e in got]
    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 5
    first = got[0]
    assert first == event(
        0,
        user_agent="curl/8",
        account="account~1",
        session="s1",
        fingerprint="fp",
        reasons=["rate: 300/min", "datacenter"],
        record="profile:7",
        enforced=False,
        id=ids[0],
    )
    assert got[1].account is None and got[1].session is None and got[1].record is None


def test_events_since_id_and_limit(store: StateStore) -> None:
    for i in range(10):
        store.record_event(event(i))
    store.flush()
    everything = store.events(limit=1000)
    ids = [e.id or 0 for e in everything]
    assert [e.path for e in store.events(limit=3)] == ["/users/0", "/users/1", "/users/2"]
    assert [e.id for e in store.events(since_id=ids[6])] == ids[7:]
    assert [e.id for e in store.events(since_id=ids[2], limit=2)] == ids[3:5]
    assert store.events(since_id=ids[-1]) == []
    assert store.events(limit=0) == []


def test_recording_does_not_keep_a_reference_to_the_callers_event(store: StateStore) -> None:
    e = event(0, reasons=["one"])
    store.record_event(e)
    e.reasons.append("added later")
    e.path = "/changed"
    store.flush()
    (got,) = store.events()
    assert got.reasons == ["one"] and got.path == "/users/0"


def test_recent_events_are_the_newest_oldest_first(store: StateStore) -> None:
    recent = getattr(store, "recent_events", None)
    if recent is None:
        pytest.skip("backend has no recent_events fast path")
    for i in range(10):
        store.record_event(event(i))
    store.flush()
    assert [e.path for e in recent(3)] == ["/users/7", "/users/8", "/users/9"]
    assert len(recent(100)) == 10
    assert recent(0) == []


def test_prune_deletes_old_events_and_ids_are_never_reused(store: StateStore) -> None:
    for i in range(5):
        store.record_event(event(i))
    store.flush()
    last_id = store.events()[-1].id or 0
    assert store.prune_events(NOW + 3) == 3
    assert [e.path for e in store.events()] == ["/users/3", "/users/4"]
    assert store.prune_events(NOW + 3) == 0
    assert store.prune_events(NOW + 100) == 2
    assert store.events() == []
    store.record_event(event(9))
    store.flush()
    (fresh,) = store.events()
    assert (fresh.id or 0) > last_id  # a tail cursor held across a prune still works


def test_apply_retention_uses_the_policy(store: StateStore) -> None:
    day = 86400.0
    store.record_event(event(0, ts=NOW - 3 * day))
    store.record_event(event(1, ts=NOW - 1 * day))
    store.record_event(event(2, ts=NOW))
    store.flush()
    policy = Policy(privacy=PrivacyPolicy(event_retention_days=2))
    assert apply_retention(store, policy, NOW) == 1
    assert [e.path for e in store.events()] == ["/users/1", "/users/2"]
    assert apply_retention(store, Policy(), NOW) == 0  # default 30 days keeps both


# -- settings ---------------------------------------------------------------------------------


def test_settings(store: StateStore) -> None:
    assert store.get_setting("mode") is None
    store.set_setting("mode", "observe")
    assert store.get_setting("mode") == "observe"
    store.set_setting("mode", "enforce")
    assert store.get_setting("mode") == "enforce"
    store.set_setting("empty", "")
    assert store.get_setting("empty") == ""


def test_spend_once_is_single_use_while_the_mark_lives(store: StateStore) -> None:
    assert store.spend_once("challenge:a", until=NOW + 600, now=NOW) is True
    assert store.spend_once("challenge:a", until=NOW + 600, now=NOW + 1) is False
    assert store.spend_once("challenge:b", until=NOW + 600, now=NOW + 1) is True
    # After the mark expires the key is free again (a challenge is long dead by then anyway).
    assert store.spend_once("challenge:a", until=NOW + 1300, now=NOW + 700) is True
    assert store.spend_once("challenge:a", until=NOW + 1300, now=NOW + 701) is False


def test_is_spent_reads_a_mark_without_making_one(store: StateStore) -> None:
    assert store.is_spent("session:a", now=NOW) is False
    assert store.is_spent("session:a", now=NOW) is False  # asking twice marks nothing
    assert store.spend_once("session:a", until=NOW + 600, now=NOW) is True
    assert store.is_spent("session:a", now=NOW + 1) is True
    assert store.is_spent("session:b", now=NOW + 1) is False
    assert store.is_spent("session:a", now=NOW + 600) is False  # the mark has expired
    assert store.spend_once("session:b", until=NOW + 600, now=NOW + 1) is True


# -- hostile input ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings_round_trip(store: StateStore, text: str) -> None:
    store.add_ban(ban(text, kind="account", reason=text, source=text))
    got = store.get_ban("account", text)
    assert got is not None and (got.value, got.reason, got.source) == (text, text, text)
    store.record_event(
        event(0, path=text, user_agent=text, ip=text, account=text, fingerprint=text, reasons=[text, text])
    )
    store.set_setting(text, text)
    store.flush()
    (e,) = store.events()
    assert (e.path, e.user_agent, e.ip, e.account, e.fingerprint, e.reasons) == (
        text,
        text,
        text,
        text,
        text,
        [text, text],
    )
    assert store.get_setting(text) == text
    # And nothing else was touched (the SQL-looking string stayed data).
    assert len(store.list_bans()) == 1


def test_undecodable_text_is_stored_not_crashed_on(store: StateStore) -> None:
    # Doors decode odd bytes with surrogateescape; such text cannot be UTF-8 encoded as is.
    store.record_event(event(0, path="/users/\udcff\udc80", reasons=["bad \ud800"]))
    store.record_event(event(1))
    store.flush()
    got = store.events()
    assert [e.ts for e in got] == [NOW, NOW + 1]
    assert got[0].path.startswith("/users/")


# -- audit log --------------------------------------------------------------------------------


def _entries(store: StateStore) -> list[audit.AuditEntry]:
    out: list[audit.AuditEntry] = []
    while page := store.audit_entries(after_seq=out[-1].seq if out else 0, limit=7):
        out.extend(page)
    return out


def test_audit_entries_chain_in_order_and_verify(store: StateStore) -> None:
    assert store.audit_head() is None
    assert audit.verify(_entries(store), recorded_head=store.audit_head()).verified == 0
    first = store.append_audit(AuditRecord(NOW, "alice", "ban.add", "ip:203.0.113.7", {"ttl": 3600}))
    for i in range(1, 20):
        store.append_audit(AuditRecord(NOW + i, "system", "ban.add", f"ip:198.51.100.{i}", {"n": i}))
    store.flush()
    entries = _entries(store)
    assert [e.seq for e in entries] == list(range(1, 21))
    assert first is not None and entries[0] == first
    assert entries[0].prev_hash == audit.GENESIS and entries[0].details == {"ttl": 3600}
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert store.audit_head() == (20, entries[-1].hash)
    result = audit.verify(entries, recorded_head=store.audit_head(), expect_head=entries[9].hash)
    assert (result.ok, result.verified, result.head) == (True, 20, entries[-1].hash)
    assert [e.seq for e in store.audit_entries(after_seq=18, limit=100)] == [19, 20]
    assert [e.seq for e in store.audit_entries(after_seq=0, limit=2)] == [1, 2]
    assert store.audit_entries(limit=0) == []


def test_audit_appends_from_many_threads_form_one_chain(store: StateStore) -> None:
    def work(who: int) -> None:
        for i in range(10):
            store.append_audit(AuditRecord(NOW + i, f"user{who}", "policy.write", "p.toml", {"i": i}))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.flush()
    entries = _entries(store)
    assert len(entries) == 40
    assert audit.verify(entries, recorded_head=store.audit_head()).ok


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_audit_keeps_hostile_text_exactly_as_hashed(store: StateStore, text: str) -> None:
    store.append_audit(AuditRecord(NOW, text, text, text, {text: [text, 1.5, None]}))
    store.append_audit(AuditRecord(NOW, "bad \ud800", "x", "y", {"k": "\udcff"}))
    store.flush()
    entries = _entries(store)
    assert (entries[0].actor, entries[0].action, entries[0].target) == (text, text, text)
    assert entries[0].details == {text: [text, 1.5, None]}
    assert audit.verify(entries, recorded_head=store.audit_head()).ok


# -- incidents ---------------------------------------------------------------------------------


def _detection(i: int = 0, **kw: object) -> Detection:
    fields: dict[str, object] = {
        "ts": NOW + i,
        "source": "live",
        "verdict": "block",
        "actors": Actors(ips=[f"ip~{i:04x}"], networks=["net~aa"], user_agents=["curl/8"]),
        "detectors": {"breadth": ["120 profiles in an hour"]},
        "records": [f"profile:{n}" for n in range(i, i + 5)],
        "requests": 5,
        "samples": [{"ts": NOW + i, "method": "GET", "path": f"/users/{i}"}],
    }
    fields.update(kw)
    return Detection(**fields)  # type: ignore[arg-type]


def test_incidents_round_trip_and_list_oldest_first(store: StateStore) -> None:
    assert store.list_incidents() == []
    assert store.get_incident("nope") is None
    later = open_incident("inc-b", _detection(5), at=NOW + 60, by="system")
    first = open_incident("inc-a", _detection(0), at=NOW, by="system")
    assert store.save_incident(later) is True
    assert store.save_incident(first) is True
    assert first.version == 1
    got = store.get_incident("inc-a")
    assert got is not None and got.to_dict() == first.to_dict()
    assert [i.id for i in store.list_incidents()] == ["inc-a", "inc-b"]


def test_incident_saves_refuse_a_stale_copy(store: StateStore) -> None:
    incident = open_incident("inc-1", _detection(), at=NOW, by="system")
    assert store.save_incident(incident)
    mine, theirs = store.get_incident("inc-1"), store.get_incident("inc-1")
    assert mine is not None and theirs is not None
    advance(mine, "contained", at=NOW + 1, by="alice", note="banned the /24")
    assert store.save_incident(mine) is True and mine.version == 2
    advance(theirs, "closed", at=NOW + 2, by="bob")
    assert store.save_incident(theirs) is False  # read before alice's step: must reload
    again = open_incident("inc-1", _detection(), at=NOW, by="system")
    assert store.save_incident(again) is False  # a new incident cannot replace a stored one
    stored = store.get_incident("inc-1")
    assert stored is not None and stored.stage == "contained" and stored.version == 2
    assert [s.by for s in stored.steps] == ["system", "alice"]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_incidents_keep_hostile_text(store: StateStore, text: str) -> None:
    text = "x" + text  # empty values are skipped by design (an empty user agent is no actor)
    detection = _detection(actors=Actors(ips=[text], user_agents=[text]), records=[text])
    incident = open_incident("inc-h", detection, at=NOW, by=text, title=text)
    assert store.save_incident(incident)
    got = store.get_incident("inc-h")
    assert got is not None
    assert (got.title, got.actors.user_agents, got.records, got.steps[0].by) == (text, [text], [text], text)


# -- lifecycle --------------------------------------------------------------------------------


def test_closed_store_drops_events_quietly_but_refuses_other_calls(store: StateStore) -> None:
    store.close()
    store.record_event(event(0))  # the request path must not fail during shutdown
    store.flush()
    store.close()  # idempotent
    with pytest.raises(StateClosedError):
        store.add_ban(ban())
    with pytest.raises(StateClosedError):
        store.events()
