"""The incident book on every backend (memory, SQLite, Redis single/Cluster): correlation across
writers, compare-and-set under concurrent changes, every change audited exactly once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis_servers import RedisServer
from test_conformance import BACKENDS

from scrapewarden.cli.main import main
from scrapewarden.core.incidents import Actors, Detection
from scrapewarden.incidents.book import IncidentBook
from scrapewarden.state.audit import entries, verify_store
from scrapewarden.state.base import StateStore

NOW = 1_800_000_000.0


@pytest.fixture(params=["memory", "sqlite", "redis", "redis-cluster"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    s = BACKENDS[request.param](tmp_path, request)
    yield s
    s.close()


def detection(ip: str, network: str, **kw: object) -> Detection:
    return Detection(
        ts=NOW,
        source="live",
        verdict="block",
        actors=Actors(ips=[ip], networks=[network]),
        records=[f"profile:{ip}"],
        **kw,  # type: ignore[arg-type]
    )


def test_detections_join_or_open_and_each_is_audited(store: StateStore) -> None:
    book = IncidentBook(store, clock=lambda: NOW)
    a, opened = book.record(detection("ip~1", "net~a"))
    assert opened
    b, opened = book.record(detection("ip~2", "net~a"))
    assert not opened and b.id == a.id
    c, opened = book.record(detection("ip~3", "net~c"))
    assert opened and c.id != a.id
    stored = book.get(a.id)
    assert stored.actors.ips == ["ip~1", "ip~2"] and stored.records == ["profile:ip~1", "profile:ip~2"]
    store.flush()
    assert [e.action for e in entries(store)] == ["incident.open", "incident.join", "incident.open"]
    assert verify_store(store).ok


def test_concurrent_changes_are_all_kept(store: StateStore) -> None:
    book = IncidentBook(store, clock=lambda: NOW)
    incident, _ = book.record(detection("ip~0", "net~a"))
    errors: list[BaseException] = []

    def join(i: int) -> None:
        try:
            IncidentBook(store, clock=lambda: NOW).record(detection(f"ip~{i}", "net~a"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=join, args=(i,)) for i in range(1, 9)]
    threads.append(threading.Thread(target=lambda: book.assign(incident.id, owner="alice", by="bob")))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stored = book.get(incident.id)
    assert sorted(stored.actors.ips) == sorted(f"ip~{i}" for i in range(9))
    assert stored.owner == "alice" and stored.detections == 9
    store.flush()
    actions = [e.action for e in entries(store)]
    assert actions.count("incident.join") == 8 and actions.count("incident.assign") == 1
    assert verify_store(store).ok


def test_incident_commands_through_redis(redis_server: RedisServer) -> None:
    url = f"{redis_server.url}?prefix=cli-{uuid.uuid4().hex[:8]}"
    from scrapewarden.state.url import open_state

    store = open_state(url)
    incident, _ = IncidentBook(store, clock=lambda: NOW).record(detection("ip~1", "net~a"))
    store.close()
    runner = CliRunner(env={"COLUMNS": "200", "SCRAPEWARDEN_STATE": url, "SCRAPEWARDEN_USER": "frank"})
    advanced = runner.invoke(main, ["incidents", "advance", incident.id, "--note", "banned"])
    assert advanced.exit_code == 0, advanced.output
    shown = runner.invoke(main, ["incidents", "show", incident.id])
    assert "contained" in shown.stdout and "frank" in shown.stdout
    verified = runner.invoke(main, ["audit", "verify"])
    assert verified.exit_code == 0 and "2 entries verified" in verified.stdout
