"""What only the SQLite store promises: persistence, sharing a file, batching, robustness."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from scrapewarden.state.base import Ban, Event
from scrapewarden.state.errors import StateError
from scrapewarden.state.sqlite import AUTO_PRUNE_INTERVAL, SCHEMA_VERSION, SQLiteStore

NOW = 1_700_000_000.0


def event(i: int, **kw: object) -> Event:
    fields: dict[str, object] = {
        "ts": NOW + i,
        "action": "block",
        "score": 90.0,
        "enforced": True,
        "ip": "203.0.113.7",
        "method": "GET",
        "path": f"/users/{i}",
    }
    fields.update(kw)
    return Event(**fields)  # type: ignore[arg-type]


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as store:
        store.add_ban(Ban("ip", "203.0.113.7", NOW, NOW + 3600, "scraping"))
        store.add_ban(Ban("account", "42", NOW, None, "old"))
        store.remove_ban("account", "42")
        store.set_setting("mode", "observe")
        for i in range(3):
            store.record_event(event(i))
        # No flush: close() must commit what is queued.
    with SQLiteStore(path) as store:
        assert store.get_ban("ip", "203.0.113.7") == Ban("ip", "203.0.113.7", NOW, NOW + 3600, "scraping")
        assert store.get_ban("account", "42") is None
        assert store.prior_offences("account", "42") == 1
        assert store.get_setting("mode") == "observe"
        before = store.events()
        assert [e.path for e in before] == ["/users/0", "/users/1", "/users/2"]
        store.record_event(event(3))
        store.flush()
        assert (store.events()[-1].id or 0) > (before[-1].id or 0)


def test_schema_is_versioned_strict_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        strict = {row[1]: row[5] for row in conn.execute("PRAGMA table_list") if row[0] == "main"}
        for table in ("meta", "bans", "ban_history", "events", "settings", "spent"):
            assert strict[table] == 1, table
        with pytest.raises(sqlite3.IntegrityError):  # STRICT: a text score is refused
            conn.execute("INSERT INTO events (ts, action, score, enforced, ip, method, path) "
                         "VALUES (1.0, 'block', 'high', 1, 'x', 'GET', '/')")  # fmt: skip
    finally:
        conn.close()


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.close()
    with pytest.raises(StateError, match="newer"):
        SQLiteStore(path)


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not sqlite, just text long enough to have a header" * 20)
    with pytest.raises(StateError, match=r"notes\.txt"):
        SQLiteStore(path)


def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as server, SQLiteStore(path) as cli:
        cli.add_ban(Ban("ip", "198.51.100.9", NOW, None, "from the CLI"))
        seen = server.get_ban("ip", "198.51.100.9")
        assert seen is not None and seen.reason == "from the CLI"
        server.remove_ban("ip", "198.51.100.9")
        assert cli.list_bans() == []
        assert cli.add_ban(Ban("ip", "198.51.100.9", NOW + 1, None)).offences == 2
        server.record_event(event(0))
        cli.record_event(event(1))
        server.flush()
        cli.flush()
        assert sorted(e.path for e in cli.events()) == ["/users/0", "/users/1"]
        server.set_setting("k", "v")
        assert cli.get_setting("k") == "v"


def test_a_burst_from_four_threads_keeps_every_event(tmp_path: Path) -> None:
    per_thread = 10_000
    with SQLiteStore(tmp_path / "state.db") as store:

        def work(thread: int) -> None:
            for i in range(per_thread):
                store.record_event(event(i, ip=f"thread-{thread}", path=f"/t{thread}/{i}"))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        store.flush()
        assert store.dropped_events == 0
        got = store.events(limit=10 * per_thread)
        assert len(got) == 4 * per_thread
        assert len({e.id for e in got}) == 4 * per_thread
        for thread in range(4):
            # Each thread's events are all there, in the order that thread recorded them.
            mine = [e.path for e in got if e.ip == f"thread-{thread}"]
            assert mine == [f"/t{thread}/{i}" for i in range(per_thread)]


def _lock_database(path: Path) -> sqlite3.Connection:
    """Another process's long write: holds the write lock until committed."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_full_queue_drops_and_counts_events_instead_of_blocking(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path, max_pending=10, batch_size=1, busy_timeout=60) as store:
        other = _lock_database(path)
        for i in range(50):
            store.record_event(event(i))  # returns at once even though the writer is stuck
        other.execute("COMMIT")
        other.close()
        store.flush()
        stored = len(store.events(limit=100))
        # At most the queue plus the one item the writer holds can wait; the rest are counted.
        assert stored <= 11
        assert stored + store.dropped_events == 50


def test_a_locked_database_fails_writes_cleanly_and_the_store_recovers(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path, busy_timeout=0.05) as store:
        other = _lock_database(path)
        with pytest.raises(StateError, match="locked"):
            store.add_ban(Ban("ip", "203.0.113.7", NOW, None))
        store.record_event(event(0))
        store.flush()  # does not raise: nothing a flush itself must write
        assert store.dropped_events == 1
        other.execute("COMMIT")
        other.close()
        assert store.add_ban(Ban("ip", "203.0.113.7", NOW, None)).offences == 1
        store.record_event(event(1))
        store.flush()
        assert [e.path for e in store.events()] == ["/users/1"]


def test_a_bad_event_is_dropped_without_losing_its_batch(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "state.db", batch_seconds=1.0) as store:
        store.record_event(event(0))
        store.record_event(event(1, ts="not a time"))
        store.record_event(event(2))
        store.flush()
        assert [e.path for e in store.events()] == ["/users/0", "/users/2"]
        assert store.dropped_events == 1


def test_old_events_are_pruned_automatically_at_most_hourly(tmp_path: Path) -> None:
    clock = [NOW]
    with SQLiteStore(tmp_path / "state.db", retention_seconds=100, clock=lambda: clock[0]) as store:
        store.record_event(event(0, ts=NOW - 500, path="/old"))
        store.record_event(event(0, ts=NOW, path="/new"))
        store.flush()
        assert [e.path for e in store.events()] == ["/new"]

        store.record_event(event(0, ts=NOW - 500, path="/old-again"))
        store.flush()
        # Within the hour: no second pass, the old event stays for now.
        assert [e.path for e in store.events()] == ["/new", "/old-again"]

        clock[0] = NOW + AUTO_PRUNE_INTERVAL
        store.record_event(event(0, ts=clock[0], path="/later"))
        store.flush()
        assert [e.path for e in store.events()] == ["/later"]


def test_without_retention_nothing_is_pruned_automatically(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "state.db") as store:
        store.record_event(event(0, ts=0.0))
        store.flush()
        assert len(store.events()) == 1


def test_ban_history_records_how_each_ban_ended(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    clock = [NOW + 50]
    with SQLiteStore(path, clock=lambda: clock[0]) as store:
        store.add_ban(Ban("ip", "203.0.113.7", NOW, NOW + 10))
        store.add_ban(Ban("ip", "203.0.113.7", NOW + 20, NOW + 30))
        store.remove_ban("ip", "203.0.113.7")
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT created, ended, ended_by FROM ban_history ORDER BY created").fetchall()
    conn.close()
    assert rows == [(NOW, NOW + 20, "replaced"), (NOW + 20, NOW + 50, "removed")]


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    from scrapewarden.state.sqlite import _MIGRATIONS

    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT")
        for statement in _MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO settings VALUES ('mode', 'observe')")
    conn.close()
    with SQLiteStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.get_setting("mode") == "observe"  # nothing lost on the way
        assert store.spend_once("x", until=NOW + 10, now=NOW) is True


def test_a_version_2_database_gains_the_audit_log_incidents_and_users(tmp_path: Path) -> None:
    from scrapewarden.core.audit import AuditRecord
    from scrapewarden.state.sqlite import _MIGRATIONS

    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT")
        for statement in (*_MIGRATIONS[1], *_MIGRATIONS[2]):
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        conn.execute("INSERT INTO spent VALUES ('challenge:1', ?)", (NOW + 60,))
    conn.close()
    with SQLiteStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
        assert store.spend_once("challenge:1", until=NOW + 60, now=NOW) is False  # kept
        assert store.audit_head() is None and store.list_incidents() == []
        assert store.list_users() == []
        entry = store.append_audit(AuditRecord(NOW, "alice", "ban.add", "ip:192.0.2.1"))
        assert entry.seq == 1 and store.audit_head() == (1, entry.hash)


def test_a_mark_spent_by_one_process_is_spent_for_the_other(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as one, SQLiteStore(path) as other:
        assert one.spend_once("challenge:42", until=NOW + 600, now=NOW) is True
        assert other.spend_once("challenge:42", until=NOW + 600, now=NOW + 1) is False


def test_a_version_4_database_gains_the_allows(tmp_path: Path) -> None:
    from scrapewarden.state.base import Allow
    from scrapewarden.state.sqlite import _MIGRATIONS

    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT")
        for version in (1, 2, 3, 4):
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '4')")
        conn.execute("INSERT INTO settings VALUES ('mode', 'observe')")
    conn.close()
    with SQLiteStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
        assert store.get_setting("mode") == "observe"
        assert store.list_allows() == []
        store.add_allow(Allow("account", "partner-7", NOW, None, "contract 12", "ana"))
        assert store.get_allow("account", "partner-7") == Allow(
            "account", "partner-7", NOW, None, "contract 12", "ana"
        )
