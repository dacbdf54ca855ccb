"""The Redis store on real servers: outages, slow servers, replays, and instances sharing state.

The conformance suite (test_conformance.py) covers what every store does; this file covers
what only a networked store has to survive. Servers are real redis-server processes on
loopback, stopped or frozen (SIGSTOP) to make an outage.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis_servers import RedisCluster, RedisServer

from scrapewarden.core.clearance import Verdict
from scrapewarden.core.decision import Action
from scrapewarden.core.policy import Policy, ProtectedResource
from scrapewarden.state.base import Ban, Event
from scrapewarden.state.redis import RedisStore, StateUnavailableError, codec, parse_redis_url
from scrapewarden.state.redis.store import _Op
from scrapewarden.state.url import open_state
from scrapewarden.warden import Warden

NOW = 1_800_000_000.0
LIVENESS = 5.0
"""Seconds a call may take before the test calls it stuck. Not a performance bound: without
the store's timeouts, a call to a frozen server never returns at all."""


def event(i: int) -> Event:
    return Event(
        ts=NOW + i, action="block", score=90.0, enforced=True, ip="ip~1", method="GET", path=f"/u/{i}"
    )


def ban(value: str, *, created: float = NOW, expires: float | None = NOW + 600) -> Ban:
    return Ban(kind="ip", value=value, created=created, expires=expires, reason="test")


def open_redis(server: RedisServer, prefix: str, **options: str) -> RedisStore:
    query = "&".join(f"{k}={v}" for k, v in {"prefix": prefix, "timeout": "0.05", **options}.items())
    store = open_state(f"{server.url}?{query}")
    assert isinstance(store, RedisStore)
    return store


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(own_redis: RedisServer, prefix: str) -> Iterator[RedisStore]:
    s = open_redis(own_redis, prefix)
    yield s
    s.close()


def finishes(call: Callable[[], Any]) -> Any:
    """Run ``call`` in a thread; fail the test if it is still stuck after LIVENESS seconds."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # handed to the test below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(LIVENESS)
    assert not thread.is_alive(), "a state call hung on an unreachable Redis"
    if errors:
        raise errors[0]
    return result[0] if result else None


def wait_until(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# -- a dead server ----------------------------------------------------------------------------


def test_a_stopped_server_degrades_to_local_state_and_every_call_returns(
    own_redis: RedisServer, store: RedisStore
) -> None:
    store.add_ban(ban("192.0.2.1"))
    assert [b.value for b in store.list_bans(NOW)] == ["192.0.2.1"]
    own_redis.stop()

    # Reads are answered from what was last seen, writes locally; nothing raises, nothing hangs.
    assert [b.value for b in finishes(lambda: store.list_bans(NOW))] == ["192.0.2.1"]
    assert store.degraded and store.outages == 1
    assert finishes(lambda: store.get_ban("ip", "192.0.2.1")) is not None
    assert finishes(lambda: store.prior_offences("ip", "192.0.2.1")) == 1
    stored = finishes(lambda: store.add_ban(ban("192.0.2.2")))
    assert stored.offences == 1
    assert {b.value for b in store.list_bans(NOW)} == {"192.0.2.1", "192.0.2.2"}
    finishes(lambda: store.record_event(event(1)))
    finishes(store.flush)
    assert finishes(lambda: store.spend_once("challenge:x", NOW + 60, NOW)) is True
    assert store.spend_once("challenge:x", NOW + 60, NOW + 1) is False  # still single use here
    assert finishes(lambda: store.prune_events(NOW)) == 0
    with pytest.raises(StateUnavailableError, match="unreachable"):
        store.events()
    assert store.local_answers >= 8
    assert store.pending_writes == 3  # the ban, the event, the mark


def test_writes_made_while_redis_was_down_reach_it_when_it_is_back(
    own_redis: RedisServer, store: RedisStore, prefix: str
) -> None:
    own_redis.stop()
    store.add_ban(ban("192.0.2.7", expires=None))
    for i in range(3):
        store.record_event(event(i))
    store.set_setting("note", "written during the outage")
    assert store.spend_once("challenge:y", NOW + 60, NOW) is True
    assert store.degraded and store.pending_writes == 6

    own_redis.start()  # an empty server: only the replay can put anything there
    wait_until(lambda: not store.degraded and store.pending_writes == 0)
    assert store.replayed_writes == 3  # the ban, the setting, the mark (events are counted apart)

    other = open_redis(own_redis, prefix)  # another instance, fresh
    try:
        got = other.get_ban("ip", "192.0.2.7")
        assert got is not None and got.expires is None and got.reason == "test"
        assert [e.path for e in other.events()] == ["/u/0", "/u/1", "/u/2"]
        assert other.get_setting("note") == "written during the outage"
        assert other.spend_once("challenge:y", NOW + 60, NOW + 1) is False
        assert not other.degraded
    finally:
        other.close()


def test_the_outbox_keeps_bans_when_full_of_events(own_redis: RedisServer, prefix: str) -> None:
    store = open_redis(own_redis, prefix, max_pending="5")
    try:
        own_redis.stop()
        for i in range(5):
            store.record_event(event(i))
        store.add_ban(ban("192.0.2.9"))  # pushes the oldest event out, not the ban
        store.record_event(event(9))  # no room: dropped and counted
        assert store.pending_writes == 5 and store.dropped_events == 2
        own_redis.start()
        wait_until(lambda: not store.degraded and store.pending_writes == 0)
        assert store.get_ban("ip", "192.0.2.9") is not None
        assert [e.path for e in store.events()] == ["/u/1", "/u/2", "/u/3", "/u/4"]
    finally:
        store.close()


def test_a_setting_written_during_an_outage_does_not_replace_the_shared_one(
    own_redis: RedisServer, store: RedisStore, prefix: str
) -> None:
    gate = held_back(store)
    own_redis.stop()
    assert store.get_setting("challenge.key") is None
    store.set_setting("challenge.key", "made-while-cut-off")
    assert store.get_setting("challenge.key") == "made-while-cut-off"
    own_redis.start()
    other = open_redis(own_redis, prefix)  # an instance that reached Redis first
    other.set_setting("challenge.key", "already-in-use")
    gate.set()
    wait_until(lambda: not store.degraded and store.pending_writes == 0)
    assert store.get_setting("challenge.key") == "already-in-use"
    assert other.get_setting("challenge.key") == "already-in-use"
    assert store.lost_settings == 1
    other.close()


def test_closing_while_down_counts_what_is_lost(own_redis: RedisServer, prefix: str) -> None:
    store = open_redis(own_redis, prefix)
    own_redis.stop()
    store.add_ban(ban("192.0.2.3"))
    store.record_event(event(0))
    finishes(store.close)
    assert store.dropped_writes == 1 and store.dropped_events == 1


def test_a_store_opened_while_redis_is_down_starts_degraded(own_redis: RedisServer, prefix: str) -> None:
    own_redis.stop()
    store = finishes(lambda: open_redis(own_redis, prefix))
    try:
        assert finishes(lambda: store.list_bans(NOW)) == []
        assert store.degraded
        store.add_ban(ban("192.0.2.4"))
        own_redis.start()
        wait_until(lambda: not store.degraded)
        assert [b.value for b in store.list_bans(NOW)] == ["192.0.2.4"]
    finally:
        store.close()


# -- a frozen (slow) server ---------------------------------------------------------------------


def test_a_frozen_server_costs_one_timeout_then_local_answers(
    own_redis: RedisServer, store: RedisStore, prefix: str
) -> None:
    store.add_ban(ban("192.0.2.5"))
    store.list_bans(NOW)
    own_redis.pause()
    try:
        # The first call waits out the socket timeout (0.05 s here), then the store is degraded
        # and later calls do not touch the socket at all.
        assert [b.value for b in finishes(lambda: store.list_bans(NOW))] == ["192.0.2.5"]
        assert store.degraded
        store.add_ban(ban("192.0.2.6"))
        answered = store.local_answers
        for _ in range(20):
            assert len(finishes(lambda: store.list_bans(NOW))) == 2
        assert store.local_answers == answered + 20
    finally:
        own_redis.resume()
    wait_until(lambda: not store.degraded and store.pending_writes == 0)
    other = open_redis(own_redis, prefix)
    try:
        assert {b.value for b in other.list_bans(NOW)} == {"192.0.2.5", "192.0.2.6"}
    finally:
        other.close()


def test_a_ban_removed_elsewhere_leaves_the_local_mirror_too(own_redis: RedisServer, prefix: str) -> None:
    a, b = open_redis(own_redis, prefix), open_redis(own_redis, prefix)
    try:
        a.add_ban(ban("192.0.2.8"))
        assert len(a.list_bans(NOW)) == 1
        b.remove_ban("ip", "192.0.2.8")
        assert a.list_bans(NOW) == []
        own_redis.pause()
        try:
            assert finishes(lambda: a.list_bans(NOW)) == []  # the mirror forgot it as well
        finally:
            own_redis.resume()
    finally:
        a.close()
        b.close()


# -- instances sharing one Redis --------------------------------------------------------------

FIREFOX = [
    (b"host", b"site.example"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-GB,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br"),
]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def test_two_wardens_on_one_redis_share_bans_keys_and_spent_answers(
    redis_server: RedisServer, prefix: str
) -> None:
    url = f"{redis_server.url}?prefix={prefix}"
    policy = Policy(protected=[ProtectedResource(pattern="/users/{id}")])
    clock = Clock()
    one, two = Warden(policy, state=url, clock=clock), Warden(policy, state=url, clock=clock)
    try:

        def visit(warden: Warden) -> Action:
            return warden.decide_http(
                peer="192.0.2.50", method="GET", path="/", query="", headers=FIREFOX
            ).action

        assert visit(one) is Action.ALLOW and visit(two) is Action.ALLOW
        one.ban("ip", "192.0.2.50", ttl=600, reason="operator ban in instance one")
        assert visit(one) is Action.BLOCK
        clock.now += 2.5  # past the other instance's ban refresh
        assert visit(two) is Action.BLOCK

        # One challenge key for both (made by whichever came first), so either checks the
        # other's cookies; and an answer spent in one is spent in the other.
        assert one.challenges.key == two.challenges.key
        assert one.pseudonymizer.ip("192.0.2.50") == two.pseudonymizer.ip("192.0.2.50")
        answer = Verdict(reason="ok", id=uuid.uuid4().hex)
        assert one.challenges._spend(answer, clock.now) is True
        assert two.challenges._spend(answer, clock.now) is False
    finally:
        one.close()
        two.close()


def test_a_frozen_cluster_node_costs_one_timeout_and_its_writes_are_replayed(
    own_cluster: RedisCluster, prefix: str
) -> None:
    store = open_state(f"{own_cluster.url}?prefix={prefix}&timeout=0.05")
    assert isinstance(store, RedisStore)
    try:
        store.add_ban(ban("192.0.2.10"))
        holder = store._client().get_node_from_key(store.keys.expiry).port
        node = next(n for n in own_cluster.nodes if n.port == holder)
        node.pause()  # shorter than the cluster's node timeout: the others keep serving
        try:
            assert [b.value for b in finishes(lambda: store.list_bans(NOW))] == ["192.0.2.10"]
            assert store.degraded
            store.add_ban(ban("192.0.2.11"))
        finally:
            node.resume()
        wait_until(lambda: not store.degraded and store.pending_writes == 0)
        assert {b.value for b in store.list_bans(NOW)} == {"192.0.2.10", "192.0.2.11"}
        assert store.replayed_writes == 1
    finally:
        store.close()


def held_back(store: RedisStore) -> threading.Event:
    """Keep ``store`` from finding Redis back until the returned event is set."""
    gate = threading.Event()
    probe = store._probe
    store._probe = lambda: gate.is_set() and probe()  # type: ignore[method-assign]
    return gate


def test_a_replayed_ban_does_not_replace_a_newer_one_made_meanwhile(
    own_redis: RedisServer, store: RedisStore, prefix: str
) -> None:
    gate = held_back(store)
    own_redis.stop()
    store.add_ban(ban("192.0.2.20", created=NOW, expires=NOW + 60))  # queued
    own_redis.start()
    other = open_redis(own_redis, prefix)
    try:
        newer = other.add_ban(ban("192.0.2.20", created=NOW + 30, expires=NOW + 3600))
        assert newer.offences == 1
        gate.set()
        wait_until(lambda: not store.degraded and store.pending_writes == 0)
        got = other.get_ban("ip", "192.0.2.20")
        assert got is not None and got.created == NOW + 30 and got.expires == NOW + 3600
        assert got.offences == 2 and other.prior_offences("ip", "192.0.2.20") == 2
    finally:
        other.close()


def test_a_replayed_removal_leaves_a_ban_made_after_it(own_redis: RedisServer, prefix: str) -> None:
    clock = [NOW + 100]
    store = RedisStore(
        parse_redis_url(f"{own_redis.url}?prefix={prefix}&timeout=0.05", "test"), clock=lambda: clock[0]
    )
    other = open_redis(own_redis, prefix)
    try:
        store.add_ban(ban("192.0.2.21", created=NOW))
        store.add_ban(ban("192.0.2.22", created=NOW))
        gate = held_back(store)
        own_redis.pause()
        try:
            assert store.remove_ban("ip", "192.0.2.21") is True  # made at NOW + 100, queued
            assert store.remove_ban("ip", "192.0.2.22") is True
            assert store.degraded
        finally:
            own_redis.resume()
        other.add_ban(ban("192.0.2.21", created=NOW + 200))  # a new ban, after the removal
        gate.set()
        wait_until(lambda: not store.degraded and store.pending_writes == 0)
        assert [b.value for b in other.list_bans(NOW + 300)] == ["192.0.2.21"]
        assert [b.value for b in store.list_bans(NOW + 300)] == ["192.0.2.21"]
    finally:
        store.close()
        other.close()


# -- event ids and batches ----------------------------------------------------------------------


def test_event_ids_keep_growing_when_the_counter_is_lost(redis_server: RedisServer, prefix: str) -> None:
    store = open_redis(redis_server, prefix)
    try:
        store.record_event(event(0))
        store.record_event(event(1))
        store.flush()
        before = [e.id or 0 for e in store.events()]
        store._client().delete(store.keys.event_seq)  # e.g. restored from an older snapshot
        store.record_event(event(2))
        store.flush()
        ids = [e.id or 0 for e in store.events()]
        assert ids[:2] == before and ids[2] > before[1]
    finally:
        store.close()


def test_a_batch_sent_twice_is_stored_once(redis_server: RedisServer, prefix: str) -> None:
    # What happens when a reply is lost after Redis wrote the batch and the writer retries.
    store = open_redis(redis_server, prefix)
    try:
        batch = [store_op(event(i)) for i in range(3)]
        for op in batch:
            op.batch = "retried/3"
        store._send_events(batch)
        store._send_events(batch)
        assert [e.path for e in store.events()] == ["/u/0", "/u/1", "/u/2"]
    finally:
        store.close()


def store_op(e: Event) -> _Op:
    return _Op("event", (codec.event_fields(e),))


@pytest.mark.parametrize("servers", ["redis_server", "redis_cluster"])
def test_more_threads_than_connections_wait_their_turn(
    servers: str, request: pytest.FixtureRequest, prefix: str
) -> None:
    # redis-py's cluster pools raise "Too many connections" instead of waiting; that must not
    # look like an outage (the store bounds calls itself).
    url = request.getfixturevalue(servers).url
    store = open_state(f"{url}?prefix={prefix}&max_connections=2&connect_timeout=2")
    assert isinstance(store, RedisStore)

    def work(i: int) -> None:
        for j in range(20):
            store.spend_once(f"challenge:{i}-{j}", NOW + 60, NOW)
            store.prior_offences("ip", f"192.0.2.{i}")

    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not store.degraded and store.outages == 0 and store.local_answers == 0
        assert store.spend_once("challenge:3-7", NOW + 60, NOW + 1) is False
    finally:
        store.close()


# -- the audit log through an outage ---------------------------------------------------------------


def test_audit_entries_made_while_down_are_never_dropped_and_chain_on_replay(
    own_redis: RedisServer, prefix: str
) -> None:
    from scrapewarden.core.audit import AuditRecord, verify

    store = open_redis(own_redis, prefix, max_pending="3")
    try:
        assert store.append_audit(AuditRecord(NOW, "alice", "ban.add", "ip:192.0.2.1")) is not None
        own_redis.stop()
        for i in range(3):
            store.record_event(event(i))
        for i in range(4):  # more than the outbox holds: events make room, then it goes over
            assert (
                finishes(lambda i=i: store.append_audit(AuditRecord(NOW + i, "system", "ban.add", f"ip:{i}")))
                is None
            )
        assert store.pending_writes >= 4 and store.dropped_writes == 0
        with pytest.raises(StateUnavailableError):
            store.audit_entries()
        own_redis.start()  # an empty server: the replay chains the entries anew, in order
        wait_until(lambda: not store.degraded and store.pending_writes == 0)
        entries = store.audit_entries()
        assert [e.target for e in entries] == ["ip:0", "ip:1", "ip:2", "ip:3"]
        assert verify(entries, recorded_head=store.audit_head()).ok
    finally:
        store.close()


def test_an_automatic_ban_while_redis_is_down_is_audited_when_it_is_back(
    own_redis: RedisServer, prefix: str
) -> None:
    from scrapewarden.core.decision import Decision

    store = open_redis(own_redis, prefix)
    warden = Warden(Policy(), state=store)
    try:
        own_redis.stop()
        decision = Decision(Action.BLOCK, 95.0, new_bans=[("ip", "192.0.2.44")])
        finishes(lambda: warden._imposing_bans(decision, NOW))
        own_redis.start()
        wait_until(lambda: not store.degraded and store.pending_writes == 0)
        (entry,) = store.audit_entries()
        assert (entry.actor, entry.action, entry.target) == ("system", "ban.add", "ip:192.0.2.44")
        assert store.get_ban("ip", "192.0.2.44") is not None
    finally:
        warden.close()


def test_an_audit_append_retried_after_a_lost_reply_is_logged_once(
    own_redis: RedisServer, store: RedisStore
) -> None:
    from scrapewarden.core.audit import AuditRecord, verify

    record = AuditRecord(NOW, "alice", "ban.add", "ip:192.0.2.1")
    assert store._send_audit(record, "token-1") is not None
    # The same record again (its reply lost, so it was queued and replayed): not a second entry.
    assert store._send_audit(record, "token-1") is None
    store.append_audit(AuditRecord(NOW + 1, "bob", "ban.remove", "ip:192.0.2.1"))
    entries = store.audit_entries()
    assert [e.actor for e in entries] == ["alice", "bob"]
    assert verify(entries, recorded_head=store.audit_head()).ok
