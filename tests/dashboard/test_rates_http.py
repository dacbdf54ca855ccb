"""Requests per second over time, end to end: a dashboard served beside a deciding Warden in the
same process (as the demo runs it), its sampler started by the app's lifespan with a short
interval, real traffic to the site over loopback; the Overview draws the series, /api/rates
serves it as its OpenAPI document says, and shutting the app down stops the sampler."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from scrapewarden.dashboard.accounts import add_user, make_token
from scrapewarden.dashboard.api import OPENAPI
from scrapewarden.dashboard.app import create_app
from scrapewarden.dashboard.login_guard import LoginBudget
from scrapewarden.doors.asgi import ScrapeWardenMiddleware
from scrapewarden.warden import Warden

from .conftest import BOT_UA, CHROME, PASSWORD, _people, login, serve, site_policy

DEADLINE = 30.0
INTERVAL = 0.1
ROUNDS = 200


def _served_pair(tmp_path: Path, interval: float) -> tuple[Warden, Any, Any, Any]:
    state_url = f"sqlite:///{tmp_path}/state.db"
    warden = Warden(site_policy(), state=state_url)
    add_user(warden.store, "vic", "viewer", PASSWORD, now=time.time())
    site = serve(ScrapeWardenMiddleware(_people, warden=warden))
    app = create_app(warden, rate_interval=interval, login_budget=LoginBudget(100, 100, 300))
    return warden, site, app, serve(app, lifespan="on")


def test_the_overview_draws_requests_per_second_sampled_in_the_background(tmp_path: Path) -> None:
    import httpx

    warden, site, app, dash = _served_pair(tmp_path, INTERVAL)
    sampler = app.state.dashboard.sampler
    thread = sampler.thread
    try:
        assert sampler.running and thread is not None and thread.is_alive()  # started by the lifespan
        first = sampler.samples()[0] if sampler.samples() else None
        sent = 0
        deadline = time.monotonic() + DEADLINE
        with httpx.Client(base_url=site.url, timeout=10) as traffic:
            # Rounds of people and a script, until a point of the series has them (bounded).
            for round_ in range(ROUNDS):
                for i, ua in enumerate((CHROME, CHROME, BOT_UA)):
                    headers = {"x-forwarded-for": f"198.51.100.{i}", "user-agent": ua, "accept": "text/html"}
                    traffic.get(f"/people/{round_}", headers=headers)
                    sent += 1
                points = sampler.series().points
                if sum(1 for p in points if p.per_second > 0) >= 2:
                    break
                assert time.monotonic() < deadline and round_ < ROUNDS - 1, "no rate in the series"
                time.sleep(INTERVAL / 2)
        # Every decision is in the counters the sampler read (cumulative: robust to gaps).
        samples = sampler.samples()
        if first is None:
            first = samples[0]
        last = samples[-1]
        grown = sum(last.totals["this process"].values()) - sum(first.totals["this process"].values())
        assert grown >= sent - 3  # the last round may not be read yet

        with login(dash.url, "vic") as client:
            html = client.get("/").text
            live = client.get("/overview/live").text
            api = client.get("/api/rates").json()
        for page in (html, live):
            assert 'id="rates-chart"' in page and 'id="rates-waiting"' not in page
            svg = re.search(r'<svg[^>]*id="rates-chart".*?</svg>', page, re.S)
            assert svg and "<path" in svg.group(0)
        assert "this process" in live
        assert api["sampling"] is True and api["interval"] == INTERVAL and api["window"] == 3600
        assert api["points"] and any(p["per_second"] > 0 for p in api["points"])
        assert "allow" in api["actions"]
        assert [s["name"] for s in api["sources"]] == ["this process"] and api["sources"][0]["ok"]
        # The answer is what the OpenAPI document says (the schemathesis run sees no points).
        token = make_token(warden.store, "vic", now=time.time(), ttl=600).token
        case = schemathesis.openapi.from_dict(OPENAPI)["/api/rates"]["GET"].Case()
        checked = case.call_and_validate(
            base_url=dash.url,
            headers={"authorization": f"Bearer {token}"},
            checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
        )
        assert checked.status_code == 200 and checked.json()["points"]
        assert httpx.get(dash.url + "/api/rates", timeout=10).status_code == 401  # not for strangers
    finally:
        dash.stop()  # the lifespan's shutdown: no close() needed to stop the sampler
        site.stop()
    assert not sampler.running and not thread.is_alive()
    app.state.dashboard.close()
    warden.close()


def test_until_there_are_two_points_the_overview_says_it_is_collecting(tmp_path: Path) -> None:
    warden, site, app, dash = _served_pair(tmp_path, 60)  # one sample now, the next in a minute
    sampler = app.state.dashboard.sampler
    try:
        with login(dash.url, "vic") as client:
            html = client.get("/").text
            api = client.get("/api/rates").json()
        assert 'id="rates-chart"' not in html
        waiting = re.search(r'id="rates-waiting">(.*?)</p>', html, re.S)
        assert waiting and "Collecting" in waiting.group(1) and "every 60 s" in waiting.group(1)
        assert api["sampling"] is True and api["points"] == []
    finally:
        started = time.monotonic()
        dash.stop()  # the sampler sleeps for a minute, yet stops at once
        site.stop()
    assert not sampler.running and time.monotonic() - started < DEADLINE
    app.state.dashboard.close()
    warden.close()
