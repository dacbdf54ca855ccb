"""``scrapewarden dashboard --metrics-url``: requests per second from a real door's /metrics.

The forward-auth door (``scrapewarden authz --metrics-listen``) and the dashboard both run as
real processes on loopback; traffic goes to the door, the Overview is read over HTTP. A second
URL points at a port nobody listens on: the page shows it missing, and still renders.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from scrapewarden.cli.main import main
from scrapewarden.core.incidents import Actors, Incident
from scrapewarden.dashboard.accounts import add_user
from scrapewarden.state.sqlite import SQLiteStore

from .conftest import PASSWORD, XSS_UA, Setup, login

SCRAPEWARDEN = Path(sys.executable).with_name("scrapewarden")
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.5",
    "Accept-Encoding": "gzip, deflate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
}
SCRIPT = {"User-Agent": "python-requests/2.32", "Accept": "*/*"}
DEADLINE = 30.0
INTERVAL = 0.5
"""Seconds between the dashboard's readings of the metrics (--metrics-interval; 5 by default)."""
MAX_ROUNDS = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        assert process.poll() is None, log.read_text()
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{url} never answered: {log.read_text()}"
            time.sleep(0.1)


@contextmanager
def running(args: list[str], log: Path, ready: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [str(SCRAPEWARDEN), *args], stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    try:
        wait_http(ready, process, log)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)


def figure(html: str, name: str) -> str:
    found = re.search(rf'id="{name}">([^<]*)<', html)
    assert found, f"no #{name} on the page"
    return found.group(1).strip()


def test_the_overview_shows_requests_per_second_from_a_doors_metrics(tmp_path: Path) -> None:
    door, door_metrics, dead, dash = free_port(), free_port(), free_port(), free_port()
    db = tmp_path / "state.db"
    with SQLiteStore(db) as store:
        add_user(store, "vic", "viewer", PASSWORD, now=time.time())
    door_url = f"http://127.0.0.1:{door_metrics}/metrics"
    dead_url = f"http://127.0.0.1:{dead}/metrics"
    with (
        running(
            ["authz", "--listen", f"127.0.0.1:{door}", "--metrics-listen", f"127.0.0.1:{door_metrics}"],
            tmp_path / "authz.log",
            door_url,
        ),
        running(
            [
                "dashboard",
                "--listen",
                f"127.0.0.1:{dash}",
                "--state",
                f"sqlite:///{db}",
                "--metrics-url",
                door_url,
                "--metrics-url",
                dead_url,
                "--metrics-interval",
                str(INTERVAL),
                "--log-level",
                "warning",
            ],
            tmp_path / "dashboard.log",
            f"http://127.0.0.1:{dash}/login",
        ),
        login(f"http://127.0.0.1:{dash}", "vic") as client,
    ):
        first = client.get("/overview/live")
        assert first.status_code == 200
        sent = 0
        deadline = time.monotonic() + DEADLINE
        with httpx.Client(base_url=f"http://127.0.0.1:{door}", timeout=10) as traffic:
            # Rounds of traffic until the dashboard's sampler has read some of it (bounded).
            for round_ in range(MAX_ROUNDS):
                for i in range(10):
                    headers = BROWSER if i % 3 else SCRIPT
                    traffic.get(
                        "/auth",
                        headers={
                            **headers,
                            "X-Forwarded-Method": "GET",
                            "X-Forwarded-Uri": f"/page/{i}",
                            "X-Forwarded-Host": "shop.example",
                            "X-Forwarded-Proto": "http",
                            "X-Forwarded-For": f"198.51.100.{i}",
                        },
                    )
                    sent += 1
                second = client.get("/overview/live")
                assert second.status_code == 200
                shown = figure(second.text, "requests-per-second")
                share = figure(second.text, "refused-share")
                if shown != "–" and float(shown) > 0 and share != "–" and 'id="rates-chart"' in second.text:
                    break
                assert time.monotonic() < deadline and round_ < MAX_ROUNDS - 1, second.text
                time.sleep(INTERVAL / 2)
        assert float(shown) > 0
        assert float(share.rstrip("%")) > 0  # the scripts were refused
        text = re.sub(r"\s+", " ", second.text)
        assert door_url in text and dead_url in text
        assert re.search(r"missing: unreachable", text), text
        # The dead source is named as left out of the chart; the chart counts the door.
        left_out = r"Left out of part of the chart \(not read then\): [^<]*"
        assert re.search(left_out + re.escape(dead_url), text)
        rates = client.get("/api/rates").json()
        assert rates["sampling"] and rates["interval"] == INTERVAL
        assert all(p["missing"] == [dead_url] for p in rates["points"])
        # Every point counts the door's decisions in its interval: together, at most all sent.
        assert 0 < sum(p["per_second"] * p["seconds"] for p in rates["points"]) <= sent + 1e-6
        full = client.get("/")
        assert full.status_code == 200 and "Requests per second now" in full.text


def test_metrics_urls_off_loopback_are_refused_before_serving(tmp_path: Path) -> None:
    runner = CliRunner()
    state = f"sqlite:///{tmp_path}/s.db"
    result = runner.invoke(
        main, ["dashboard", "--state", state, "--metrics-url", "http://169.254.169.254/metrics"]
    )
    assert result.exit_code == 2 and "loopback addresses only" in result.output
    result = runner.invoke(main, ["dashboard", "--state", state, "--metrics-url", "file:///etc/passwd"])
    assert result.exit_code == 2 and "not an http://" in result.output


def test_campaigns_and_records_on_the_overview_with_titles_escaped(setup: Setup, tmp_path: Path) -> None:
    now = time.time()
    with SQLiteStore(Path(setup.state_url.removeprefix("sqlite:///"))) as store:
        store.save_incident(
            Incident(
                id="INC-20261127-abcdef",
                title=XSS_UA,
                opened_at=now - 60,
                actors=Actors(ips=["ip~1", "ip~2"]),
                first_seen=now - 120,
                last_seen=now - 5,
                records=["profile:1", "profile:2", "profile:3"],
                records_count=3,
                requests=40,
            )
        )
    setup.traffic("203.0.113.7", "/people/4", ua="python-requests/2.32.3")  # a refused record request
    setup.site_warden.settle_incidents()
    with login(setup.dash, "vic") as client:
        html = client.get("/").text
        summary = client.get("/api/summary?hours=1").json()
    with SQLiteStore(Path(setup.state_url.removeprefix("sqlite:///"))) as store:
        filed = store.list_incidents()
    # Ours, and what the site's Warden filed on its own about the refused script (if anything).
    assert "INC-20261127-abcdef" in {i.id for i in filed}
    assert figure(html, "campaigns") == str(sum(1 for i in filed if i.is_open))
    assert figure(html, "records-exposed") == str(len({r for i in filed for r in i.records}))
    assert figure(html, "records-protected") == "1"
    assert XSS_UA not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "INC-20261127-abcdef" in html
    # The API says the same.
    assert len(summary["campaigns"]) == int(figure(html, "campaigns"))
    assert summary["records"]["exposed"] == int(figure(html, "records-exposed"))
    assert summary["records"]["protected"] == 1 and summary["requests_per_second"] is None
    assert summary["metrics_sources"] == []
    # No metrics configured and no Warden deciding here: the page says how to add them.
    assert figure(html, "requests-per-second") == "–" and "--metrics-url" in html


@pytest.mark.parametrize("hours", ["1", "24"])
def test_live_fragment_renders_for_every_window(setup: Setup, hours: str) -> None:
    with login(setup.dash, "vic") as client:
        reply = client.get(f"/overview/live?hours={hours}")
    assert reply.status_code == 200 and 'id="campaigns"' in reply.text
