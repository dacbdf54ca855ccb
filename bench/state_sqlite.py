"""How many ``record_event`` calls a second the SQLite store absorbs, against a naive baseline.

Run: ``.venv/bin/python bench/state_sqlite.py [--events N] [--threads T]``

* *call rate*: what the request path pays (``record_event`` only queues).
* *absorbed rate*: events durably committed per second, from the first call to ``flush()``
  returning, which is the number that matters when the queue must not grow without bound.
* *naive*: one ``INSERT`` + ``COMMIT`` per event on one connection with the same schema and
  pragmas (WAL, synchronous=NORMAL): what writing straight from the request path would cost;
  and the same with SQLite's default rollback journal and synchronous=FULL.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from scrapewarden.state.base import Event
from scrapewarden.state.sqlite import SQLiteStore


def make_event(i: int) -> Event:
    return Event(
        ts=time.time(),
        action="block",
        score=87.5,
        enforced=True,
        ip=f"ip~{i:016x}",
        method="GET",
        path=f"/users/{i}",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) python-requests/2.32",
        account=None,
        fingerprint="fp~0123456789abcdef",
        reasons=["profiles_per_hour exceeded", "datacenter network"],
        record=f"profile:{i}",
    )


def bench_store(path: Path, total: int, threads: int) -> tuple[float, float]:
    events = [make_event(i) for i in range(total)]
    per_thread = total // threads
    with SQLiteStore(path) as store:
        store.flush()  # the writer thread and schema are ready before timing starts

        def work(chunk: list[Event]) -> None:
            for e in chunk:
                store.record_event(e)

        workers = [
            threading.Thread(target=work, args=(events[t * per_thread : (t + 1) * per_thread],))
            for t in range(threads)
        ]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        queued = time.perf_counter()
        store.flush()
        done = time.perf_counter()
        stored = len(store.events(limit=total + 1))
        assert stored == per_thread * threads, (stored, store.dropped_events)
    n = per_thread * threads
    return n / (queued - start), n / (done - start)


def bench_naive(path: Path, total: int, *, defaults: bool = False) -> float:
    SQLiteStore(path).close()  # same schema
    conn = sqlite3.connect(path, isolation_level=None)
    if defaults:
        # What a first attempt usually looks like: rollback journal, fsync on every commit.
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=FULL")
    else:
        conn.execute("PRAGMA synchronous=NORMAL")
    sql = (
        "INSERT INTO events (ts, action, score, enforced, ip, method, path, user_agent, account, "
        "session, fingerprint, reasons, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    events = [make_event(i) for i in range(total)]
    start = time.perf_counter()
    for e in events:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            sql,
            (
                e.ts,
                e.action,
                e.score,
                int(e.enforced),
                e.ip,
                e.method,
                e.path,
                e.user_agent,
                e.account,
                e.session,
                e.fingerprint,
                json.dumps(e.reasons),
                e.record,
            ),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--naive-events", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one_call, one_absorbed = bench_store(Path(tmp) / "one.db", args.events, 1)
        many_call, many_absorbed = bench_store(Path(tmp) / "many.db", args.events, args.threads)
        naive = bench_naive(Path(tmp) / "naive.db", args.naive_events)
        naive_defaults = bench_naive(Path(tmp) / "naive-defaults.db", args.naive_events // 5, defaults=True)
    print(f"SQLite {sqlite3.sqlite_version}, {args.events} events per store run")
    print(f"SQLiteStore, 1 thread : {one_call:>10,.0f} calls/s   {one_absorbed:>10,.0f} committed/s")
    label = f"SQLiteStore, {args.threads} threads:"
    print(f"{label} {many_call:>10,.0f} calls/s   {many_absorbed:>10,.0f} committed/s")
    print(f"naive commit per event: {naive:>10,.0f} committed/s ({args.naive_events} events, same pragmas)")
    print(
        f"naive, sqlite defaults: {naive_defaults:>10,.0f} committed/s "
        f"({args.naive_events // 5} events, rollback journal, synchronous=FULL)"
    )
    print(f"batched store absorbs {one_absorbed / naive:.0f}x the naive rate (1 thread)")


if __name__ == "__main__":
    main()
