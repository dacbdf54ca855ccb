"""The analysis end to end on small crafted logs: each kind of actor gets the verdict it should."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from scrapewarden.logs.analyzer import analyze
from scrapewarden.logs.report import to_json

from .conftest import CHROME, FIREFOX, GOOGLEBOT, POLICY, START, line, people, write


def test_people_alone_are_human(tmp_path: Path, rng: random.Random) -> None:
    log = write(tmp_path / "a.log", people(rng, 300))
    result = analyze([log], POLICY)
    assert result.actors == []
    assert {v.verdict for v in result.addresses.values()} == {"human"}


def test_single_address_walker_is_a_scraper_with_its_records(tmp_path: Path, rng: random.Random) -> None:
    entries = people(rng, 100)
    ip = "203.0.113.9"
    walk = [
        (START + 100 + i * 2.0, line(ip, START + 100 + i * 2.0, f"/users/{1000 + i}", "python-requests/2.32"))
        for i in range(600)
    ]
    entries += walk
    # a 404 hands nothing out
    entries.append(
        (START + 5000, line(ip, START + 5000, "/users/999999", "python-requests/2.32", status=404))
    )
    result = analyze([write(tmp_path / "a.log", entries)], POLICY)
    actor = next(a for a in result.actors if ip in a.addresses)
    assert (actor.kind, actor.verdict) == ("ip", "scraper")
    assert actor.distinct_records == 600
    assert any("distinct records" in r for r in actor.reasons)
    assert any("neighbours" in r for r in actor.reasons)
    exposed = next(e for e in result.records_exposed if e["actor"] == f"ip:{ip}")
    ids = {r["id"] for r in exposed["records"]}
    assert ids == {str(1000 + i) for i in range(600)}
    first = next(r for r in exposed["records"] if r["id"] == "1000")
    assert first["first_ts"] == first["last_ts"] == START + 100
    assert all(v.verdict == "human" for k, v in result.addresses.items() if k != ip)


def test_rotating_addresses_are_one_campaign(tmp_path: Path, rng: random.Random) -> None:
    entries = people(rng, 200)
    pool = [
        f"{rng.randint(11, 99)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(400)
    ]
    t = START + 3600
    for i in range(4000):  # 4000 profiles in about 40 minutes, 10 per address, ids interleaved
        t += rng.uniform(0.2, 1.0)
        entries.append((t, line(pool[i // 10], t, f"/users/{50000 + i}", CHROME)))
    result = analyze([write(tmp_path / "a.log", entries)], POLICY)
    campaigns = [a for a in result.actors if a.kind == "campaign"]
    assert len(campaigns) == 1
    campaign = campaigns[0]
    assert campaign.verdict == "scraper"
    assert set(campaign.addresses) == set(pool)
    assert campaign.distinct_records == 4000
    assert campaign.user_agents == [CHROME]
    # each address appears once in the report: inside its campaign
    reported = [ip for a in result.actors for ip in a.addresses]
    assert len(reported) == len(set(reported))
    assert {v.verdict for ip, v in result.addresses.items() if ip not in set(pool)} == {"human"}


def test_verified_crawler_and_impostor(tmp_path: Path, rng: random.Random) -> None:
    entries = people(rng, 50)
    real, fake = "66.249.66.1", "198.51.100.20"
    for i in range(300):
        t = START + 60 + i * 5.0
        entries.append((t, line(real, t, f"/users/{rng.randint(1, 100000)}", GOOGLEBOT)))
        entries.append((t + 1, line(fake, t + 1, f"/users/{rng.randint(1, 100000)}", GOOGLEBOT)))
    result = analyze([write(tmp_path / "a.log", entries)], POLICY)
    assert result.addresses[real].verdict == "verified_bot"
    assert result.addresses[fake].verdict == "scraper"
    assert any("claims to be googlebot" in e.reason for e in result.addresses[fake].evidence)


def test_report_shape(tmp_path: Path, rng: random.Random) -> None:
    entries = people(rng, 20)
    entries.append((START + 10, line("192.0.2.1", START + 10, "/", "curl/8.5.0")))
    report = to_json(analyze([write(tmp_path / "a.log", entries)], POLICY))
    assert {"lines", "bad_lines", "first_ts", "last_ts", "actors", "records_exposed"} <= set(report)
    assert report["bad_lines"] == 0
    (actor,) = report["actors"]
    assert actor["ip"] == "192.0.2.1"
    assert actor["verdict"] == "suspicious"
    assert {"verdict", "score", "requests", "distinct_records", "reasons"} <= set(actor)
    assert FIREFOX not in actor["user_agents"]


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared data not present")
def test_real_logs_find_the_mass_downloader_and_the_declared_bots() -> None:
    files = [
        SHARED / "elastic-apache-logs" / "apache_logs",
        *sorted((SHARED / "secrepo-access-logs").glob("access.log*")),
    ]
    result = analyze(files)
    assert result.stats.lines == 22077
    # secrepo 2018-12-15: python-requests bulk-downloading the log archive from one address
    downloader = result.addresses["198.72.227.213"]
    assert downloader.verdict == "scraper"
    assert any("python-requests" in e.reason for e in downloader.evidence)
    # self-declared crawlers are never taken for people; those in published ranges are verified
    declared = {
        ip: v
        for ip, v in result.addresses.items()
        if any(e.detector in ("client.bot_ua", "client.ai_crawler") for e in v.evidence)
    }
    assert len(declared) > 100
    assert all(v.verdict != "human" for v in declared.values())
    assert sum(v.verdict == "verified_bot" for v in result.addresses.values()) >= 20
    # most addresses are people reading the sites
    assert sum(v.verdict == "human" for v in result.addresses.values()) > len(result.addresses) / 2


def test_site_without_assets_app_users_are_not_a_campaign(tmp_path: Path, rng: random.Random) -> None:
    """Assets on a CDN: none in the log; many people with one browser build open records."""
    entries = []
    app = CHROME
    for n in range(800):
        ip = f"100.{64 + n // 250}.{n % 250}.9"
        t = START + rng.uniform(0, 3600)
        for _ in range(rng.randint(2, 6)):
            entries.append((t, line(ip, t, f"/users/{rng.randint(1, 400000)}", app)))
            t += rng.uniform(5, 90)
    result = analyze([write(tmp_path / "api.log", entries)], POLICY)
    assert [a for a in result.actors if a.kind == "campaign"] == []
    assert {v.verdict for v in result.addresses.values()} == {"human"}


def test_an_empty_log_gives_an_empty_report(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_text("")
    result = analyze([log], POLICY)
    assert (result.stats.lines, result.actors, result.addresses, result.records_exposed) == (0, [], {}, [])
    assert to_json(result)["first_ts"] is None


def test_campaign_signature_uses_logged_fingerprint_fields(tmp_path: Path, rng: random.Random) -> None:
    import json

    def record(ip: str, ts: float, path: str, lang: str) -> tuple[float, str]:
        return ts, json.dumps(
            {"remote_addr": ip, "msec": f"{ts:.3f}", "request": f"GET {path} HTTP/1.1", "status": 200,
             "http_user_agent": CHROME, "http_accept_language": lang}
        )  # fmt: skip

    entries = []
    for n in range(200):  # people: same browser build, their own languages, pages with assets
        ip, t, lang = f"81.1.{n}.7", START + rng.uniform(0, 7200), rng.choice(["de-DE", "fr-FR", "en-GB"])
        for _ in range(4):
            entries.append(record(ip, t, f"/users/{rng.randint(1, 100000)}", lang))
            entries.append(record(ip, t + 0.1, "/static/app.css", lang))
            t += rng.uniform(5, 60)
    t = START + 600
    for i in range(3000):  # the pool: same browser build, one language, records only
        t += rng.uniform(0.3, 1.0)
        entries.append(
            record(
                f"{20 + i // 10 % 200}.{i // 2000}.{i // 10 % 250}.9",
                t,
                f"/users/{rng.randint(1, 400000)}",
                "en-US",
            )
        )
    result = analyze([write(tmp_path / "a.json", entries)], POLICY)
    (campaign,) = [a for a in result.actors if a.kind == "campaign"]
    assert campaign.key == f"{CHROME} | en-US"
    assert campaign.verdict == "scraper"
    assert not [ip for ip in campaign.addresses if ip.endswith(".7")]  # no person in it
