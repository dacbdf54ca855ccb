"""``watch``: the live engine on a growing log, bans through the state store, out to a file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrapewarden.cli.main import main
from scrapewarden.core.policy import Policy, ProtectedResource
from scrapewarden.logs.tail import Tail
from scrapewarden.logs.watch import Watcher
from scrapewarden.state.base import Ban
from scrapewarden.warden import Warden

from .conftest import line

UA = "python-requests/2.32.3"


def _append(log: Path, lines: list[str]) -> None:
    with log.open("a") as f:
        f.write("".join(text + "\n" for text in lines))


def test_scraper_is_banned_once_and_other_doors_bans_are_shared(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    out = tmp_path / "bans.txt"
    warden = Warden(Policy(), state=f"sqlite:///{tmp_path}/state.db")
    watcher = Watcher(warden, Tail(log), "plain", out=out)
    now = time.time()
    _append(log, [line("203.0.113.5", now + i * 0.1, f"/page/{i}", UA) for i in range(30)])
    _append(log, ["garbage"])
    watcher.step()
    assert watcher.stats.lines == 31 and watcher.stats.bad_lines == 1
    assert out.read_text().splitlines()[1:] == ["203.0.113.5/32"]
    assert warden.store.get_ban("ip", "203.0.113.5") is not None
    pushes = watcher.stats.pushes
    # the banned client goes on: blocked, but nothing new to push
    _append(log, [line("203.0.113.5", now + 5 + i, "/x", UA) for i in range(10)])
    watcher.step()
    assert watcher.stats.pushes == pushes
    assert watcher.stats.decisions["block"] >= 10
    # a ban imposed by another door sharing the store reaches the block list too
    other = Warden(Policy(), state=f"sqlite:///{tmp_path}/state.db")
    other.ban("ip", "198.51.100.7", ttl=3600, reason="operator")
    other.close()
    watcher.step()
    assert out.read_text().splitlines()[1:] == ["198.51.100.7/32", "203.0.113.5/32"]
    # an expired ban drops out
    warden.store.add_ban(Ban(kind="ip", value="198.51.100.7", created=now, expires=now - 1, reason="x"))
    watcher.step()
    assert out.read_text().splitlines()[1:] == ["203.0.113.5/32"]
    warden.close()


def test_people_are_not_banned_and_the_command_runs_on_change(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    seen = tmp_path / "seen.txt"
    warden = Warden(Policy(), state="memory://")
    watcher = Watcher(warden, Tail(log), "nginx", command=f"cp {{file}} {seen}")
    now = time.time()
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
    _append(
        log, [line("192.0.2.10", now + i * 20, p, ua) for i, p in enumerate(["/", "/static/a.css", "/feed"])]
    )
    watcher.step()
    assert seen.read_text() == "# scrapewarden watch: 0 banned\n"
    assert warden.store.list_bans(now) == []
    _append(log, [line("192.0.2.66", now + i * 0.1, "/x", "curl/8") for i in range(25)])
    watcher.step()
    assert "deny 192.0.2.66/32;" in seen.read_text()
    warden.close()


def test_cli_watch_runs_for_a_while(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    now = time.time()
    log.write_text("".join(line("203.0.113.9", now + i * 0.1, "/p", UA) + "\n" for i in range(30)))
    out = tmp_path / "bans.conf"
    result = CliRunner().invoke(
        main,
        ["watch", str(log), "--bans", "nginx-geo", "--out", str(out), "--from-start", "--duration", "0.5",
         "--state", "memory://"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "203.0.113.9/32 1;" in out.read_text()
    assert "30 lines" in result.output


def test_json_lines_log(tmp_path: Path) -> None:
    import json

    log = tmp_path / "access.json"
    log.write_text("")
    out = tmp_path / "bans.txt"
    warden = Warden(Policy(), state="memory://")
    watcher = Watcher(warden, Tail(log), "plain", out=out)
    now = time.time()
    records = [
        {"remote_addr": "203.0.113.77", "msec": f"{now + i * 0.1:.3f}", "request": f"GET /p/{i} HTTP/1.1",
         "status": "200", "http_user_agent": UA}
        for i in range(30)
    ]  # fmt: skip
    _append(log, [json.dumps(r) for r in records] + ["{broken"])
    watcher.step()
    assert (watcher.stats.lines, watcher.stats.bad_lines) == (31, 1)
    assert out.read_text().splitlines()[1:] == ["203.0.113.77/32"]
    warden.close()


def test_two_watchers_on_one_redis_hold_a_walker_to_one_budget(tmp_path: Path) -> None:
    """Two hosts, each with its own log and its own watcher on one Redis: a walker whose
    requests alternate between the hosts is refused after as many records as one watcher reading
    one log refuses it (± one)."""
    from scrapewarden.bench.redis_servers import RedisMissing, RedisServer

    try:
        redis = RedisServer(tmp_path).start()
    except RedisMissing as missing:
        pytest.skip(str(missing))
    policy = Policy(
        protected=[ProtectedResource(pattern="/users/{id}")],
        limits={"per_ip": {"requests_per_minute": 600, "profiles_per_hour": 40, "profiles_per_day": 200}},
    )
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
    now = time.time()

    def walk(watchers: list[Watcher], logs: list[Path]) -> int:
        for n in range(1, 300):
            at = n % len(watchers)
            _append(logs[at], [line("203.0.113.9", now + n * 2.0, f"/users/{n * 7919 % 10**6}", ua)])
            watchers[at].step()
            if any(label != "allow" for label in watchers[at].stats.decisions):
                return n
        return 0

    def watchers(state: str, hosts: int) -> tuple[list[Watcher], list[Path]]:
        made, logs = [], []
        for host in range(hosts):
            log = tmp_path / f"{state[:5]}-{host}.log"
            log.write_text("")
            warden = Warden(policy, state=state)
            made.append(Watcher(warden, Tail(log), "plain", out=tmp_path / f"bans-{host}.txt"))
            logs.append(log)
        return made, logs

    try:
        alone_watchers, alone_logs = watchers("memory://", 1)
        alone = walk(alone_watchers, alone_logs)
        shared, shared_logs = watchers(f"{redis.url}?prefix=watch", 2)
        together = walk(shared, shared_logs)
        counters = [w.warden.counters for w in shared]
        assert all(c is not None and c.calls > 0 and c.failures == 0 for c in counters)
        for w in (*alone_watchers, *shared):
            w.warden.close()
    finally:
        redis.stop()
    assert 10 < alone < 300  # the record budget stopped it, not its first request
    assert abs(together - alone) <= 1, (alone, together)


def test_cli_watch_serves_its_metrics(tmp_path: Path) -> None:
    """`watch --metrics-listen` (a real process): its decisions can be scraped over HTTP while it
    follows the log, on a port of its own."""
    import re
    import subprocess
    import sys
    import urllib.request

    log = tmp_path / "access.log"
    now = time.time()
    log.write_text("".join(line("203.0.113.9", now + i * 0.1, "/p", UA) + "\n" for i in range(30)))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from scrapewarden.cli.main import main; main()", "watch", str(log),
         "--bans", "plain", "--out", str(tmp_path / "bans.txt"), "--from-start", "--duration", "30",
         "--state", "memory://", "--metrics-listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            found = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", proc.stderr.readline())
            url = found.group(1) if found else None
        assert url, "watch never said where its metrics are"
        decided = 0.0
        while decided < 30 and time.monotonic() < deadline:
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            counts = re.findall(r'^scrapewarden_decisions_total\{action="[a-z]+"\} (\S+)', text, re.M)
            decided = sum(float(v) for v in counts)
            time.sleep(0.2)
        assert decided == 30  # every line of the log, decided once
    finally:
        proc.terminate()
        proc.wait(timeout=10)
