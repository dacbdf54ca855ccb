"""What the Redis store's calls cost on a real redis-server started on loopback.

Run: ``.venv/bin/python bench/state_redis.py [--bans N] [--calls N] [--events N]``
(needs ``redis-server``; the server runs without persistence in a temporary directory and is
stopped at the end).

* per-call latency (median and 99th percentile) of ``add_ban``, ``prior_offences``,
  ``spend_once`` and ``list_bans`` with N bans, unchanged (the usual two-second refresh) and
  just after a change;
* ``record_event``: the call rate (it only queues) and the rate at which events reach Redis,
  from the first call to ``flush()`` returning.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

from scrapewarden.state.base import Ban, Event
from scrapewarden.state.redis import RedisStore
from scrapewarden.state.url import open_state


def start_server(workdir: str) -> tuple[subprocess.Popen[bytes], int]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    args = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*args, "--dir", workdir], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("redis-server did not start")
        time.sleep(0.02)


def timed(call: Callable[[int], object], n: int) -> dict[str, float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"median_us": statistics.median(times) * 1e6, "p99_us": times[int(n * 0.99)] * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bans", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50_000)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        proc, port = start_server(workdir)
        try:
            store = open_state(f"redis://127.0.0.1:{port}/0?prefix=bench")
            assert isinstance(store, RedisStore)
            now = time.time()
            out: dict[str, object] = {}
            out["add_ban"] = timed(
                lambda i: store.add_ban(
                    Ban("ip", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", now, now + 3600)
                ),
                opts.bans,
            )
            out["prior_offences"] = timed(lambda i: store.prior_offences("ip", "10.0.0.1"), opts.calls)
            out["spend_once"] = timed(lambda i: store.spend_once(f"challenge:{i}", now + 60, now), opts.calls)
            store.list_bans(now)
            out[f"list_bans_{opts.bans}_unchanged"] = timed(lambda i: store.list_bans(now), 100)

            def changed(i: int) -> None:
                store.add_ban(Ban("ip", "192.0.2.1", now + i, now + 3600))
                start = time.perf_counter()
                store.list_bans(now)
                fetch.append(time.perf_counter() - start)

            fetch: list[float] = []
            timed(changed, 50)
            out[f"list_bans_{opts.bans}_after_a_change_median_ms"] = statistics.median(fetch) * 1e3
            event = Event(
                ts=now, action="block", score=90.0, enforced=True, ip="ip~0123456789abcdef",
                method="GET", path="/users/1", user_agent="curl/8.5", reasons=["rate: 300/min"],
            )  # fmt: skip
            start = time.perf_counter()
            for _ in range(opts.events):
                store.record_event(event)
            queued = time.perf_counter() - start
            store.flush()
            stored = time.perf_counter() - start
            out["record_event_calls_per_s"] = opts.events / queued
            out["events_stored_per_s"] = opts.events / stored
            store.close()
            print(json.dumps(out, indent=2))
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
