"""Active campaigns and records protected vs exposed, from events and incidents."""

from __future__ import annotations

from scrapewarden.core.incidents import Actors, Incident
from scrapewarden.dashboard.overview_figures import active_campaigns, record_figures
from scrapewarden.state.base import Event

NOW = 1_800_000_000.0
HOUR = 3600.0


def event(action: str, record: str | None, *, ts: float = NOW - 60, enforced: bool = True) -> Event:
    return Event(ts, action, 1.0, enforced, "ip~a", "GET", "/users/1", record=record)


def incident(
    id: str,
    *,
    last_seen: float,
    stage: str = "open",
    records: list[str] | None = None,
    records_count: int = 0,
    ips: int = 1,
) -> Incident:
    return Incident(
        id=id,
        title=f"scraper {id}",
        opened_at=last_seen - 100,
        stage=stage,  # type: ignore[arg-type]
        actors=Actors(ips=[f"ip~{i}" for i in range(ips)], accounts=["account~x"]),
        first_seen=last_seen - 200,
        last_seen=last_seen,
        records=records or [],
        records_count=records_count or len(records or []),
        requests=12,
    )


def test_active_campaigns_are_open_incidents_seen_in_the_window_newest_first() -> None:
    found = active_campaigns(
        [
            incident("old", last_seen=NOW - 2 * HOUR),
            incident("closed", last_seen=NOW - 60, stage="closed"),
            incident("a", last_seen=NOW - 600, ips=3),
            incident("b", last_seen=NOW - 30, stage="assessing"),
        ],
        since=NOW - HOUR,
    )
    assert [c.id for c in found] == ["b", "a"]
    assert found[1].addresses == 3 and found[1].accounts == 1 and found[1].requests == 12
    assert found[0].stage == "assessing"


def test_records_protected_are_distinct_records_refused_or_challenged_when_enforced() -> None:
    events = [
        event("block", "profile:1"),
        event("block", "profile:1"),  # the same record twice: one record, two requests
        event("throttle", "profile:2"),
        event("challenge", "profile:3"),
        event("challenge", "profile:1"),
        event("block", None),  # no record asked for (a trap, the front page)
        event("block", "profile:4", enforced=False),  # observe mode protects nothing
        event("challenge_passed", "profile:5"),
        event("block", "profile:6", ts=NOW - 2 * HOUR),  # before the window
    ]
    figures = record_figures(events, [], since=NOW - HOUR)
    assert figures.protected == 3
    assert figures.protected_refused == 2 and figures.protected_challenged == 2
    assert figures.requests_stopped == 5
    assert figures.exposed == 0 and figures.incidents == 0 and not figures.exposed_at_least
    assert figures.protected_share == 1.0


def test_records_exposed_are_those_served_to_actors_in_incidents_of_the_window() -> None:
    incidents = [
        incident("a", last_seen=NOW - 60, records=["profile:1", "profile:2"]),
        incident("b", last_seen=NOW - 30, stage="closed", records=["profile:2", "profile:3"]),
        incident("old", last_seen=NOW - 3 * HOUR, records=["profile:9"]),
    ]
    figures = record_figures([event("block", "profile:7")], incidents, since=NOW - HOUR)
    assert figures.exposed == 3 and figures.incidents == 2 and not figures.exposed_at_least
    assert figures.protected == 1 and figures.protected_share == 0.25
    # An incident whose list was cut short: the figure is a lower bound.
    cut = incident("c", last_seen=NOW - 10, records=["profile:1"], records_count=500)
    figures = record_figures([], [*incidents, cut], since=NOW - HOUR)
    assert figures.exposed == 500 and figures.exposed_at_least


def test_nothing_seen_gives_no_share() -> None:
    figures = record_figures([], [], since=NOW - HOUR)
    assert figures.protected == figures.exposed == 0 and figures.protected_share is None
