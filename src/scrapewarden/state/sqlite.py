"""State in one SQLite file: survives restarts, shared by every process on the host.

Design, and why:

* WAL mode, so the CLI and dashboards can read while a server writes.
* ONE writer thread per store owns the writing connection. ``record_event`` only puts a tuple
  on a queue (the request path never waits for the disk); the writer commits queued events in
  batches (every ``batch_seconds`` or ``batch_size`` items), which is what makes thousands of
  events a second affordable. The queue is bounded: if the disk stalls, events beyond
  ``max_pending`` are dropped and counted in :attr:`SQLiteStore.dropped_events` rather than
  letting a flood of blocked requests eat the server's memory.
* Bans, settings and pruning go through the same writer but the caller waits for the commit,
  so ``add_ban`` returning means another process can already see the ban.
* Reads use their own connection, guarded by a lock.
* Every ban ever issued is kept in ``ban_history`` (with when and how it ended), which is what
  ``prior_offences`` counts, so escalation survives expiry and removal.
* ``meta.schema_version`` plus the ``_MIGRATIONS`` table let later versions change the schema.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..core.audit import GENESIS, AuditEntry, AuditRecord, chain_after
from ..core.incidents import Incident
from ._copy import check_kind, check_user
from .base import Allow, ApiToken, Ban, BanKind, Event, User
from .errors import StateClosedError, StateError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5

# version -> statements that bring a database from version-1 to version. Append, never edit.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE bans (
            kind TEXT NOT NULL CHECK (kind IN ('ip', 'network', 'account', 'fingerprint', 'session')),
            value TEXT NOT NULL,
            created REAL NOT NULL,
            expires REAL,
            reason TEXT NOT NULL DEFAULT '',
            offences INTEGER NOT NULL DEFAULT 1,
            source TEXT NOT NULL DEFAULT 'operator',
            PRIMARY KEY (kind, value)
        ) STRICT, WITHOUT ROWID""",
        """CREATE TABLE ban_history (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            created REAL NOT NULL,
            expires REAL,
            reason TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT 'operator',
            ended REAL,
            ended_by TEXT,
            UNIQUE (kind, value, created)
        ) STRICT""",
        # AUTOINCREMENT: ids are never reused after pruning, so `events tail` cursors stay valid.
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            action TEXT NOT NULL,
            score REAL NOT NULL,
            enforced INTEGER NOT NULL,
            ip TEXT NOT NULL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            user_agent TEXT NOT NULL DEFAULT '',
            account TEXT,
            session TEXT,
            fingerprint TEXT NOT NULL DEFAULT '',
            reasons TEXT NOT NULL DEFAULT '[]',
            record TEXT
        ) STRICT""",
        "CREATE INDEX events_ts ON events (ts)",
        "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT",
    ),
    2: (
        # Single-use marks (spent challenge answers), shared by every process on the host.
        "CREATE TABLE spent (key TEXT PRIMARY KEY, until REAL NOT NULL) STRICT, WITHOUT ROWID",
        "CREATE INDEX spent_until ON spent (until)",
    ),
    3: (
        # The hash-chained audit log (scrapewarden.core.audit). No AUTOINCREMENT: seq is
        # assigned from the chain's head inside the appending transaction.
        """CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            details TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        ) STRICT""",
        # Incidents as JSON documents (scrapewarden.core.incidents), with the columns lists need.
        """CREATE TABLE incidents (
            id TEXT PRIMARY KEY,
            opened_at REAL NOT NULL,
            stage TEXT NOT NULL,
            version INTEGER NOT NULL,
            doc TEXT NOT NULL
        ) STRICT, WITHOUT ROWID""",
        "CREATE INDEX incidents_opened ON incidents (opened_at)",
    ),
    4: (
        # Dashboard users (argon2id hashes only) and API tokens (SHA-256 digests only).
        """CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
            password_hash TEXT NOT NULL,
            created REAL NOT NULL,
            password_changed REAL NOT NULL
        ) STRICT, WITHOUT ROWID""",
        """CREATE TABLE api_tokens (
            digest TEXT PRIMARY KEY,
            user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
            created REAL NOT NULL,
            expires REAL,
            label TEXT NOT NULL DEFAULT ''
        ) STRICT, WITHOUT ROWID""",
        "CREATE INDEX api_tokens_user ON api_tokens (user)",
    ),
    5: (
        # Operator allows (scrapewarden.core.allows): the same kinds and values as bans.
        """CREATE TABLE allows (
            kind TEXT NOT NULL CHECK (kind IN ('ip', 'network', 'account', 'fingerprint', 'session')),
            value TEXT NOT NULL,
            created REAL NOT NULL,
            expires REAL,
            reason TEXT NOT NULL DEFAULT '',
            made_by TEXT NOT NULL DEFAULT 'operator',
            PRIMARY KEY (kind, value)
        ) STRICT, WITHOUT ROWID""",
    ),
}

_EVENT_COLUMNS = (
    "ts, action, score, enforced, ip, method, path, user_agent, account, session, fingerprint, "
    "reasons, record"
)
_INSERT_EVENT = f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SELECT_EVENT = f"SELECT id, {_EVENT_COLUMNS} FROM events"
_BAN_COLUMNS = "kind, value, created, expires, reason, offences, source"
_ALLOW_COLUMNS = "kind, value, created, expires, reason, made_by"
_USER_COLUMNS = "name, role, password_hash, created, password_changed"
_TOKEN_COLUMNS = "digest, user, created, expires, label"

AUTO_PRUNE_INTERVAL = 3600.0
"""Seconds between automatic retention passes (they run on the writer thread, after a commit)."""
_PRUNE_CHUNK = 5000

_STOP = object()


class _Write:
    """A write the caller waits for: ``fn`` runs on the writer thread inside a transaction."""

    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any] | None) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class SQLiteStore:
    """A :class:`~scrapewarden.state.base.StateStore` in a SQLite file (see module docs)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention_seconds: float | None = None,
        batch_seconds: float = 0.05,
        batch_size: int = 500,
        max_pending: int = 100_000,
        busy_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        url: str | None = None,
    ) -> None:
        if sqlite3.sqlite_version_info < (3, 37, 0):
            raise StateError(f"SQLite {sqlite3.sqlite_version} is too old: STRICT tables need 3.37 or later")
        if retention_seconds is not None and retention_seconds <= 0:
            raise ValueError("retention_seconds must be positive (or None to keep events forever)")
        self.path = os.fspath(path)
        self.url = url or f"sqlite:///{self.path}"
        self.retention_seconds = retention_seconds
        self.dropped_events = 0
        """Events lost because the queue was full, the store closed, or a row could not be written."""
        self._batch_seconds = batch_seconds
        self._batch_size = max(1, batch_size)
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._last_prune = float("-inf")
        self._last_drop_warning = float("-inf")
        self._drop_lock = threading.Lock()
        self._closed = False
        self._close_lock = threading.Lock()

        self._migrate()
        self._reader = self._connect()
        self._read_lock = threading.Lock()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._writer = threading.Thread(
            target=self._run_writer, name="scrapewarden-sqlite-writer", daemon=True
        )
        self._writer.start()
        # Events still queued when the interpreter exits would be lost without this.
        atexit.register(self.close)

    # -- connections and schema -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            # NORMAL is crash-safe in WAL mode; a power cut may lose the last few commits only.
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise StateError(f"cannot open SQLite state {self.path!r}: {exc}") from exc
        return conn

    def _migrate(self) -> None:
        conn = self._connect()
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning(
                    "SQLite state %s: WAL mode unavailable (got %s); readers may block", self.path, mode
                )
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT"
                )
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                version = int(row[0]) if row else 0
                if version > SCHEMA_VERSION:
                    raise StateError(
                        f"SQLite state {self.path!r} has schema version {version}, newer than this "
                        f"scrapewarden understands ({SCHEMA_VERSION}); upgrade scrapewarden"
                    )
                for target in sorted(v for v in _MIGRATIONS if v > version):
                    for statement in _MIGRATIONS[target]:
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(max(version, SCHEMA_VERSION)),),
                )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except sqlite3.Error as exc:
            raise StateError(f"cannot prepare SQLite state {self.path!r}: {exc}") from exc
        finally:
            conn.close()

    @property
    def schema_version(self) -> int:
        row = self._read_one("SELECT value FROM meta WHERE key = 'schema_version'", ())
        return int(row[0]) if row else 0

    # -- the writer thread ------------------------------------------------------------------

    def _run_writer(self) -> None:
        conn = self._connect()
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                batch = [item]
                # Someone waiting (a ban, a flush) means commit now; lone events may wait a
                # little for company, since one commit per event is what makes SQLite slow.
                waiting = not isinstance(item, tuple)
                deadline = time.monotonic() + self._batch_seconds
                stop = False
                while len(batch) < self._batch_size:
                    try:
                        if waiting:
                            nxt = self._queue.get_nowait()
                        else:
                            remaining = deadline - time.monotonic()
                            if remaining <= 0:
                                nxt = self._queue.get_nowait()
                            else:
                                nxt = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    batch.append(nxt)
                    waiting = waiting or not isinstance(nxt, tuple)
                self._write_batch(conn, batch)
                if stop:
                    return
        except BaseException:  # pragma: no cover - a bug; keep the log, waiters see the dead thread
            log.exception("SQLite state writer for %s crashed", self.path)
        finally:
            conn.close()

    def _write_batch(self, conn: sqlite3.Connection, batch: list[object]) -> None:
        has_events = any(isinstance(item, tuple) for item in batch)
        if has_events or any(isinstance(item, _Write) and item.fn is not None for item in batch):
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._apply(conn, batch)
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
            except sqlite3.OperationalError as exc:
                # Locked past busy_timeout, disk full, I/O error: retrying item by item would
                # only wait busy_timeout again per item, so the whole batch fails at once.
                log.warning("SQLite state %s: batch of %d failed: %s", self.path, len(batch), exc)
                for item in batch:
                    self._fail(item, exc)
            except Exception as exc:
                # Bad data in one item must not sink the rest: retry each on its own.
                log.warning(
                    "SQLite state %s: batch of %d failed (%s); retrying one by one",
                    self.path,
                    len(batch),
                    exc,
                )
                for item in batch:
                    self._write_alone(conn, item)
        # Before waking waiters, so a flush() also means "retention has been applied".
        if has_events and self.retention_seconds is not None:
            self._maybe_auto_prune(conn)
        for item in batch:
            if isinstance(item, _Write):
                item.done.set()

    def _write_alone(self, conn: sqlite3.Connection, item: object) -> None:
        if isinstance(item, _Write) and item.fn is None:
            return  # a flush marker: nothing to write
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._apply(conn, [item])
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except Exception as exc:
            self._fail(item, exc)

    def _fail(self, item: object, exc: Exception) -> None:
        if isinstance(item, _Write):
            if item.fn is not None:
                item.result = None
                item.error = exc
        else:
            self._drop(f"an event could not be stored: {exc}")

    def _apply(self, conn: sqlite3.Connection, batch: Sequence[object]) -> None:
        rows: list[tuple[object, ...]] = []
        for item in batch:
            if isinstance(item, tuple):
                rows.append(_event_row(item))
                continue
            if rows:  # keep order: events queued before this write land before it
                conn.executemany(_INSERT_EVENT, rows)
                rows = []
            if isinstance(item, _Write) and item.fn is not None:
                item.result = item.fn(conn)
        if rows:
            conn.executemany(_INSERT_EVENT, rows)

    def _maybe_auto_prune(self, conn: sqlite3.Connection) -> None:
        now = self._clock()
        if now - self._last_prune < AUTO_PRUNE_INTERVAL or self.retention_seconds is None:
            return
        self._last_prune = now
        before = now - self.retention_seconds
        try:
            # Small transactions, so a big first prune never holds the write lock for long.
            while True:
                conn.execute("BEGIN IMMEDIATE")
                deleted = _delete_events_before(conn, before, _PRUNE_CHUNK)
                conn.execute("COMMIT")
                if deleted < _PRUNE_CHUNK:
                    return
        except sqlite3.Error as exc:
            _rollback(conn)
            log.warning("SQLite state %s: automatic event pruning failed: %s", self.path, exc)

    def _call(self, fn: Callable[[sqlite3.Connection], Any] | None) -> Any:
        """Run ``fn`` on the writer thread, inside a transaction, and wait for the commit."""
        self._check_open()
        write = _Write(fn)
        self._queue.put(write)
        while not write.done.wait(0.5):
            if not self._writer.is_alive():
                raise StateError(f"SQLite state {self.path!r}: the writer thread has stopped")
        if write.error is not None:
            if isinstance(write.error, sqlite3.Error):
                raise StateError(f"SQLite state {self.path!r}: {write.error}") from write.error
            raise write.error
        return write.result

    # -- reads ------------------------------------------------------------------------------

    def _read_all(self, sql: str, params: Sequence[object]) -> list[Any]:
        self._check_open()
        with self._read_lock:
            try:
                # fetchall() so no half-read cursor keeps an old snapshot open.
                return self._reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"SQLite state {self.path!r}: {exc}") from exc

    def _read_one(self, sql: str, params: Sequence[object]) -> Any:
        rows = self._read_all(sql, params)
        return rows[0] if rows else None

    # -- bans -------------------------------------------------------------------------------

    def add_ban(self, ban: Ban) -> Ban:
        check_kind(ban.kind)
        kind, value = ban.kind, _text(ban.value)
        created, expires = float(ban.created), None if ban.expires is None else float(ban.expires)
        reason, source = _text(ban.reason), _text(ban.source)

        def write(conn: sqlite3.Connection) -> Ban:
            conn.execute(
                "UPDATE ban_history SET ended = ?, ended_by = 'replaced' "
                "WHERE kind = ? AND value = ? AND ended IS NULL AND created != ?",
                (created, kind, value, created),
            )
            conn.execute(
                "INSERT INTO ban_history (kind, value, created, expires, reason, source) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, value, created) DO UPDATE SET "
                "expires = excluded.expires, reason = excluded.reason, source = excluded.source, "
                "ended = NULL, ended_by = NULL",
                (kind, value, created, expires, reason, source),
            )
            (count,) = conn.execute(
                "SELECT count(*) FROM ban_history WHERE kind = ? AND value = ?", (kind, value)
            ).fetchone()
            offences = max(int(ban.offences), int(count))
            conn.execute(
                f"INSERT INTO bans ({_BAN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, value) DO UPDATE SET created = excluded.created, "
                "expires = excluded.expires, reason = excluded.reason, "
                "offences = excluded.offences, source = excluded.source",
                (kind, value, created, expires, reason, offences, source),
            )
            return Ban(kind, value, created, expires, reason, offences, source)

        result: Ban = self._call(write)
        return result

    def remove_ban(self, kind: BanKind, value: str) -> bool:
        value = _text(value)
        now = self._clock()

        def write(conn: sqlite3.Connection) -> bool:
            rows = conn.execute(
                "DELETE FROM bans WHERE kind = ? AND value = ? RETURNING created", (kind, value)
            ).fetchall()
            for (created,) in rows:
                conn.execute(
                    "UPDATE ban_history SET ended = ?, ended_by = 'removed' "
                    "WHERE kind = ? AND value = ? AND created = ? AND ended IS NULL",
                    (now, kind, value, created),
                )
            return bool(rows)

        removed: bool = self._call(write)
        return removed

    def get_ban(self, kind: BanKind, value: str) -> Ban | None:
        row = self._read_one(
            f"SELECT {_BAN_COLUMNS} FROM bans WHERE kind = ? AND value = ?", (kind, _text(value))
        )
        return _ban(row) if row else None

    def list_bans(self, now: float | None = None) -> list[Ban]:
        rows = self._read_all(
            f"SELECT {_BAN_COLUMNS} FROM bans WHERE ? IS NULL OR expires IS NULL OR expires > ? "
            "ORDER BY created, kind, value",
            (now, now),
        )
        return [_ban(row) for row in rows]

    def prior_offences(self, kind: BanKind, value: str) -> int:
        row = self._read_one(
            "SELECT count(*) FROM ban_history WHERE kind = ? AND value = ?", (kind, _text(value))
        )
        return int(row[0])

    def prune_bans(self, before: float) -> int:
        def write(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "DELETE FROM bans WHERE expires IS NOT NULL AND expires < ? "
                "RETURNING kind, value, created, expires",
                (before,),
            ).fetchall()
            for kind, value, created, expires in rows:
                conn.execute(
                    "UPDATE ban_history SET ended = ?, ended_by = 'expired' "
                    "WHERE kind = ? AND value = ? AND created = ? AND ended IS NULL",
                    (expires, kind, value, created),
                )
            return len(rows)

        pruned: int = self._call(write)
        return pruned

    # -- operator allows ---------------------------------------------------------------------

    def add_allow(self, allow: Allow) -> Allow:
        check_kind(allow.kind)
        row = (
            allow.kind,
            _text(allow.value),
            float(allow.created),
            None if allow.expires is None else float(allow.expires),
            _text(allow.reason),
            _text(allow.by),
        )
        self._call(
            lambda conn: conn.execute(
                f"INSERT INTO allows ({_ALLOW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, value) DO UPDATE SET created = excluded.created, "
                "expires = excluded.expires, reason = excluded.reason, made_by = excluded.made_by",
                row,
            )
        )
        return Allow(*row)

    def remove_allow(self, kind: BanKind, value: str) -> bool:
        value = _text(value)
        removed: bool = self._call(
            lambda conn: (
                conn.execute("DELETE FROM allows WHERE kind = ? AND value = ?", (kind, value)).rowcount > 0
            )
        )
        return removed

    def get_allow(self, kind: BanKind, value: str) -> Allow | None:
        row = self._read_one(
            f"SELECT {_ALLOW_COLUMNS} FROM allows WHERE kind = ? AND value = ?", (kind, _text(value))
        )
        return Allow(*row) if row else None

    def list_allows(self, now: float | None = None) -> list[Allow]:
        rows = self._read_all(
            f"SELECT {_ALLOW_COLUMNS} FROM allows WHERE ? IS NULL OR expires IS NULL OR expires > ? "
            "ORDER BY created, kind, value",
            (now, now),
        )
        return [Allow(*row) for row in rows]

    def prune_allows(self, before: float) -> int:
        before = float(before)
        pruned: int = self._call(
            lambda conn: (
                conn.execute(
                    "DELETE FROM allows WHERE expires IS NOT NULL AND expires < ?", (before,)
                ).rowcount
            )
        )
        return pruned

    # -- events -----------------------------------------------------------------------------

    def record_event(self, event: Event) -> None:
        """Queue ``event``; returns at once. Never raises on a full queue or a closed store."""
        if self._closed:
            self._drop("the store is closed")
            return
        # A snapshot, so the caller may reuse or change the Event afterwards.
        snapshot = (
            event.ts,
            event.action,
            event.score,
            event.enforced,
            event.ip,
            event.method,
            event.path,
            event.user_agent,
            event.account,
            event.session,
            event.fingerprint,
            tuple(event.reasons),
            event.record,
        )
        try:
            self._queue.put_nowait(snapshot)
        except queue.Full:
            self._drop("the write queue is full")

    def _drop(self, why: str) -> None:
        # Drops are rare and may come from many request threads at once: count exactly.
        with self._drop_lock:
            self.dropped_events += 1
            now = time.monotonic()
            warn = now - self._last_drop_warning >= 60
            if warn:
                self._last_drop_warning = now
        if warn:
            log.warning(
                "SQLite state %s: dropping events (%s); %d so far", self.path, why, self.dropped_events
            )

    def events(self, since_id: int = 0, limit: int = 100) -> list[Event]:
        if limit <= 0:
            return []
        rows = self._read_all(f"{_SELECT_EVENT} WHERE id > ? ORDER BY id LIMIT ?", (since_id, limit))
        return [_event(row) for row in rows]

    def recent_events(self, limit: int = 100) -> list[Event]:
        """The newest ``limit`` events, oldest first (what ``events tail`` shows)."""
        if limit <= 0:
            return []
        rows = self._read_all(f"{_SELECT_EVENT} ORDER BY id DESC LIMIT ?", (limit,))
        return [_event(row) for row in reversed(rows)]

    def prune_events(self, before: float) -> int:
        deleted: int = self._call(lambda conn: _delete_events_before(conn, float(before), None))
        return deleted

    # -- single-use marks -------------------------------------------------------------------

    def spend_once(self, key: str, until: float, now: float) -> bool:
        key, until, now = _text(key), float(until), float(now)

        def write(conn: sqlite3.Connection) -> bool:
            # Dead marks go first (the index makes this cheap), so a key can be spent again
            # once its mark has expired, and the table stays as small as the live marks.
            conn.execute("DELETE FROM spent WHERE until <= ?", (now,))
            cursor = conn.execute(
                "INSERT INTO spent (key, until) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, until)
            )
            return cursor.rowcount == 1

        spent: bool = self._call(write)
        return spent

    def is_spent(self, key: str, now: float) -> bool:
        row = self._read_one("SELECT until FROM spent WHERE key = ?", (_text(key),))
        return row is not None and float(row[0]) > float(now)

    # -- settings ---------------------------------------------------------------------------

    def get_setting(self, name: str) -> str | None:
        row = self._read_one("SELECT value FROM settings WHERE name = ?", (_text(name),))
        return str(row[0]) if row else None

    def set_setting(self, name: str, value: str) -> None:
        name, value = _text(name), _text(value)
        self._call(
            lambda conn: conn.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
        )

    # -- audit log --------------------------------------------------------------------------

    def append_audit(self, record: AuditRecord) -> AuditEntry:
        def write(conn: sqlite3.Connection) -> AuditEntry:
            # Inside the writer's BEGIN IMMEDIATE: no other process can append in between.
            head = conn.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
            if head is None:  # the note is gone (never written, or deleted): the last row then
                last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                prev_seq, prev_hash = (int(last[0]), str(last[1])) if last else (0, GENESIS)
            else:
                prev_seq, prev_hash = _head(head[0])
            entry = chain_after(record, prev_seq, prev_hash)
            conn.execute(
                "INSERT INTO audit (seq, ts, actor, action, target, details, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.seq, entry.ts, entry.actor, entry.action, entry.target, entry.details_json,
                 entry.prev_hash, entry.hash),
            )
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('audit_head', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (f"{entry.seq}:{entry.hash}",),
            )
            return entry

        entry: AuditEntry = self._call(write)
        return entry

    def audit_entries(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        if limit <= 0:
            return []
        # Stored order is rowid order: seq is the rowid, so this is the order rows sit in.
        rows = self._read_all(
            "SELECT seq, ts, actor, action, target, details, prev_hash, hash FROM audit "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (int(after_seq), int(limit)),
        )
        return [AuditEntry(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]

    def audit_head(self) -> tuple[int, str] | None:
        row = self._read_one("SELECT value FROM meta WHERE key = 'audit_head'", ())
        return _head(row[0]) if row else None

    # -- incidents --------------------------------------------------------------------------

    def save_incident(self, incident: Incident) -> bool:
        expected = int(incident.version)
        data = incident.to_dict()
        data["version"] = expected + 1
        doc = json.dumps(data, ensure_ascii=False)
        doc = _text(doc)

        def write(conn: sqlite3.Connection) -> bool:
            if expected == 0:
                cursor = conn.execute(
                    "INSERT INTO incidents (id, opened_at, stage, version, doc) VALUES (?, ?, ?, 1, ?) "
                    "ON CONFLICT (id) DO NOTHING",
                    (_text(incident.id), float(incident.opened_at), incident.stage, doc),
                )
            else:
                cursor = conn.execute(
                    "UPDATE incidents SET stage = ?, version = ?, doc = ? WHERE id = ? AND version = ?",
                    (incident.stage, expected + 1, doc, _text(incident.id), expected),
                )
            return cursor.rowcount == 1

        saved: bool = self._call(write)
        if saved:
            incident.version = expected + 1
        return saved

    def get_incident(self, incident_id: str) -> Incident | None:
        row = self._read_one("SELECT doc FROM incidents WHERE id = ?", (_text(incident_id),))
        return Incident.from_dict(json.loads(row[0])) if row else None

    def list_incidents(self) -> list[Incident]:
        rows = self._read_all("SELECT doc FROM incidents ORDER BY opened_at, id", ())
        return [Incident.from_dict(json.loads(r[0])) for r in rows]

    # -- dashboard users and API tokens ----------------------------------------------------

    def put_user(self, user: User) -> None:
        check_user(user)
        row = (
            _text(user.name),
            user.role,
            _text(user.password_hash),
            float(user.created),
            float(user.password_changed),
        )
        self._call(
            lambda conn: conn.execute(
                "INSERT INTO users (name, role, password_hash, created, password_changed) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET role = excluded.role, "
                "password_hash = excluded.password_hash, created = excluded.created, "
                "password_changed = excluded.password_changed",
                row,
            )
        )

    def get_user(self, name: str) -> User | None:
        row = self._read_one(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (_text(name),))
        return User(*row) if row else None

    def list_users(self) -> list[User]:
        return [User(*row) for row in self._read_all(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name", ())]

    def remove_user(self, name: str) -> bool:
        name = _text(name)

        def write(conn: sqlite3.Connection) -> bool:
            # Explicitly, not by the foreign key: foreign keys are off unless a connection asks.
            conn.execute("DELETE FROM api_tokens WHERE user = ?", (name,))
            return conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

        removed: bool = self._call(write)
        return removed

    def add_token(self, token: ApiToken) -> None:
        row = (
            _text(token.digest),
            _text(token.user),
            float(token.created),
            None if token.expires is None else float(token.expires),
            _text(token.label),
        )
        self._call(
            lambda conn: conn.execute(
                f"INSERT INTO api_tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (digest) DO UPDATE SET user = excluded.user, created = excluded.created, "
                "expires = excluded.expires, label = excluded.label",
                row,
            )
        )

    def get_token(self, digest: str) -> ApiToken | None:
        row = self._read_one(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE digest = ?", (_text(digest),))
        return ApiToken(*row) if row else None

    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        rows = self._read_all(
            f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE ? IS NULL OR user = ? ORDER BY created, digest",
            (user, user),
        )
        return [ApiToken(*row) for row in rows]

    def remove_token(self, digest: str) -> bool:
        digest = _text(digest)
        removed: bool = self._call(
            lambda conn: conn.execute("DELETE FROM api_tokens WHERE digest = ?", (digest,)).rowcount > 0
        )
        return removed

    # -- lifecycle --------------------------------------------------------------------------

    def flush(self) -> None:
        """Wait until everything queued so far is committed. A no-op on a closed store."""
        if self._closed:
            return
        self._call(None)

    def close(self) -> None:
        """Commit what is queued, stop the writer and close both connections. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            try:
                self.flush()
            finally:
                self._closed = True
                if self._writer.is_alive():
                    self._queue.put(_STOP)
                    self._writer.join()
                with self._read_lock:
                    self._reader.close()
                atexit.unregister(self.close)

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StateClosedError(f"state store {self.url} is closed")

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls back by itself after some errors (disk full...); a second ROLLBACK would
    # raise and hide the error that matters.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _text(value: object) -> str:
    """A string SQLite can store. Lone surrogates (from undecodable input) become '?'."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def _head(value: str) -> tuple[int, str]:
    seq, _, digest = str(value).partition(":")
    return int(seq), digest


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _event_row(snapshot: tuple[Any, ...]) -> tuple[object, ...]:
    (ts, action, score, enforced, ip, method, path, ua, account, session, fingerprint, reasons, record) = (
        snapshot
    )
    return (
        float(ts),
        _text(action),
        float(score),
        1 if enforced else 0,
        _text(ip),
        _text(method),
        _text(path),
        _text(ua),
        _optional_text(account),
        _optional_text(session),
        _text(fingerprint),
        json.dumps([_text(r) for r in reasons], ensure_ascii=False),
        _optional_text(record),
    )


def _event(row: Sequence[Any]) -> Event:
    (
        id_,
        ts,
        action,
        score,
        enforced,
        ip,
        method,
        path,
        ua,
        account,
        session,
        fingerprint,
        reasons,
        record,
    ) = row
    return Event(
        ts=ts,
        action=action,
        score=score,
        enforced=bool(enforced),
        ip=ip,
        method=method,
        path=path,
        user_agent=ua,
        account=account,
        session=session,
        fingerprint=fingerprint,
        reasons=list(json.loads(reasons)),
        record=record,
        id=id_,
    )


def _ban(row: Sequence[Any]) -> Ban:
    kind, value, created, expires, reason, offences, source = row
    return Ban(kind, value, created, expires, reason, offences, source)


def _delete_events_before(conn: sqlite3.Connection, before: float, chunk: int | None) -> int:
    if chunk is None:
        return conn.execute("DELETE FROM events WHERE ts < ?", (before,)).rowcount
    return conn.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? LIMIT ?)", (before, chunk)
    ).rowcount
