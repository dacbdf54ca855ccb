"""The Grafana dashboard in docs/grafana/ asks only for metrics scrapewarden exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from scrapewarden.bench.redis_servers import RedisMissing, RedisServer
from scrapewarden.core.policy import Policy
from scrapewarden.metrics_http import exposed_registry
from scrapewarden.warden import Warden

DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana" / "scrapewarden.json"


def test_every_metric_the_dashboard_queries_is_exposed(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    asked = {m for e in exprs for m in re.findall(r"\bscrapewarden_[a-z_]+", e)}
    assert len(asked) >= 6

    # On Redis, so that the state's health is exposed too.
    try:
        server = RedisServer(tmp_path).start()
    except RedisMissing as missing:
        pytest.skip(str(missing))
    warden = Warden(Policy(), state=server.url)
    try:
        warden.decide_http(peer="198.51.100.1", method="GET", path="/", query="", headers=[])
        exposed = generate_latest(exposed_registry()).decode()
    finally:
        warden.close()
        server.stop()
    names = set(re.findall(r"^# TYPE (scrapewarden_[a-z_]+) (\w+)", exposed, re.M))
    known = {n for n, _ in names}
    # A counter "x_total" is declared as "x"; a histogram "x" is read as "x_bucket".
    known |= {n + "_total" for n, kind in names if kind == "counter"}
    known |= {n + "_bucket" for n, kind in names if kind == "histogram"}
    assert asked <= known, asked - known
    assert all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"])
