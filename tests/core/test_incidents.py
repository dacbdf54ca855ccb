"""The incident model: correlation, evidence merging, the lifecycle, the stored form."""

from __future__ import annotations

import pytest

from scrapewarden.core.incidents import (
    MAX_RECORDS,
    MAX_SAMPLES,
    Actors,
    Detection,
    Incident,
    IncidentError,
    absorb,
    advance,
    assign,
    correlate,
    open_incident,
)

NOW = 1_800_000_000.0


def detection(**kw: object) -> Detection:
    fields: dict[str, object] = {
        "ts": NOW,
        "source": "live",
        "verdict": "block",
        "actors": Actors(ips=["ip~1"], networks=["net~a"]),
        "detectors": {"breadth": ["120 profiles/hour"]},
        "records": ["profile:1", "profile:2"],
        "requests": 10,
    }
    fields.update(kw)
    return Detection(**fields)  # type: ignore[arg-type]


def test_open_holds_the_detection_and_the_first_step() -> None:
    inc = open_incident("INC-1", detection(first_ts=NOW - 60), at=NOW + 5, by="system")
    assert inc.stage == "open" and [(s.stage, s.by) for s in inc.steps] == [("open", "system")]
    assert (inc.first_seen, inc.last_seen) == (NOW - 60, NOW)
    assert inc.records == ["profile:1", "profile:2"] and inc.records_count == 2
    assert inc.detectors["breadth"].reasons == ["120 profiles/hour"]
    assert inc.title == "block scraper, 1 address, 2 records exposed"


@pytest.mark.parametrize(
    ("other", "joins"),
    [
        (Actors(ips=["ip~2"], networks=["net~a"]), True),  # same network
        (Actors(ips=["ip~3"], networks=["net~b"], accounts=["acct~x"]), True),  # same account
        (Actors(ips=["ip~1"], networks=["net~b"]), False),  # only an address: not enough alone
        (Actors(ips=["ip~4"], networks=["net~c"], fingerprints=["fp"]), False),  # a shared browser build
    ],
)
def test_correlation_by_network_account_or_campaign(other: Actors, joins: bool) -> None:
    inc = open_incident(
        "INC-1",
        detection(actors=Actors(ips=["ip~1"], networks=["net~a"], accounts=["acct~x"], fingerprints=["fp"])),
        at=NOW,
        by="system",
    )
    assert (correlate([inc], detection(actors=other)) is inc) is joins


def test_a_shared_campaign_joins_whatever_the_addresses() -> None:
    inc = open_incident("INC-1", detection(campaign="c1"), at=NOW, by="system")
    far = detection(actors=Actors(ips=["ip~9"], networks=["net~z"]), campaign="c1")
    assert correlate([inc], far) is inc
    assert correlate([inc], detection(actors=Actors(networks=["net~z"]), campaign="c2")) is None


def test_closed_incidents_are_not_joined_and_the_oldest_open_one_wins() -> None:
    old = open_incident("INC-1", detection(), at=NOW, by="system")
    new = open_incident("INC-2", detection(), at=NOW + 10, by="system")
    assert correlate([new, old], detection()) is old
    advance(old, "closed", at=NOW + 20, by="alice", note="false alarm: our own crawler")
    assert correlate([new, old], detection()) is new


def test_absorb_merges_without_duplicates_and_within_bounds() -> None:
    inc = open_incident("INC-1", detection(), at=NOW, by="system")
    absorb(
        inc,
        detection(
            ts=NOW + 30,
            actors=Actors(ips=["ip~1", "ip~2"], networks=["net~a"], user_agents=["ua"]),
            records=["profile:2", "profile:3"],
            detectors={"breadth": ["120 profiles/hour", "200 profiles/hour"], "client.bot_ua": ["curl"]},
            samples=[{"path": f"/u/{i}"} for i in range(100)],
            source="analyze",
            records_count=40,
        ),
    )
    assert inc.actors.ips == ["ip~1", "ip~2"] and inc.actors.user_agents == ["ua"]
    assert inc.records == ["profile:1", "profile:2", "profile:3"] and inc.records_count == 40
    assert inc.detectors["breadth"].count == 2 and len(inc.detectors["breadth"].reasons) == 2
    assert len(inc.samples) == MAX_SAMPLES and inc.sources == ["live", "analyze"]
    assert inc.last_seen == NOW + 30 and inc.requests == 20 and inc.detections == 2
    absorb(inc, detection(records=[f"profile:{i}" for i in range(MAX_RECORDS + 10)]))
    assert len(inc.records) == MAX_RECORDS and inc.records_truncated


def test_lifecycle_moves_forward_only_with_who_and_when() -> None:
    inc = open_incident("INC-1", detection(), at=NOW, by="system")
    assert advance(inc, None, at=NOW + 1, by="alice", note="banned").stage == "contained"
    advance(inc, "notified", at=NOW + 2, by="bob")  # skipping forward is allowed
    with pytest.raises(IncidentError, match="only move forward"):
        advance(inc, "assessed", at=NOW + 3, by="bob")
    with pytest.raises(IncidentError, match="who"):
        advance(inc, None, at=NOW + 3, by="")
    advance(inc, None, at=NOW + 4, by="carol", note="done")
    assert [(s.stage, s.by, s.at) for s in inc.steps] == [
        ("open", "system", NOW),
        ("contained", "alice", NOW + 1),
        ("notified", "bob", NOW + 2),
        ("closed", "carol", NOW + 4),
    ]
    with pytest.raises(IncidentError, match="closed"):
        advance(inc, None, at=NOW + 5, by="carol")


def test_assign_reports_what_changed() -> None:
    inc = open_incident("INC-1", detection(), at=NOW, by="system")
    assert assign(inc, owner="alice", team="privacy", at=NOW, by="bob") == {
        "owner": ["", "alice"],
        "team": ["", "privacy"],
    }
    assert assign(inc, owner="alice", team=None, at=NOW, by="bob") == {}


def test_stored_form_round_trips_and_rejects_unknown_stages() -> None:
    inc = open_incident("INC-1", detection(campaign="c"), at=NOW, by="system")
    advance(inc, None, at=NOW + 1, by="alice")
    assert Incident.from_dict(inc.to_dict()).to_dict() == inc.to_dict()
    broken = inc.to_dict() | {"stage": "forgotten"}
    with pytest.raises(ValueError):
        Incident.from_dict(broken)


def test_related_findings_are_folded_before_they_reach_the_store() -> None:
    from scrapewarden.core.incidents import merge_related

    found = [
        detection(actors=Actors(ips=["ip~1"], networks=["net~a"]), campaign="c1", records=["profile:1"]),
        detection(actors=Actors(ips=["ip~2"], networks=["net~b"]), records=["profile:2"]),
        detection(
            actors=Actors(ips=["ip~3"], networks=["net~z"]), campaign="c1", records=["profile:1", "profile:3"]
        ),
        detection(actors=Actors(ips=["ip~4"], networks=["net~b"]), verdict="suspicious", ts=NOW + 9),
        detection(actors=Actors(ips=["ip~5"])),  # no network, no campaign: on its own
    ]
    merged = merge_related(found)
    assert [d.actors.ips for d in merged] == [["ip~1", "ip~3"], ["ip~2", "ip~4"], ["ip~5"]]
    campaign, network, _alone = merged
    assert campaign.campaign == "c1" and campaign.records == ["profile:1", "profile:3"]
    assert campaign.actors.networks == ["net~a", "net~z"] and campaign.requests == 20
    assert network.verdict == "block" and network.ts == NOW + 9 and network.first_ts == NOW
