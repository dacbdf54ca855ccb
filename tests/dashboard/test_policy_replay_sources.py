"""The Policy page's replay sources over real HTTP: sampled addresses (every request, allowed ones
too, scaled by the share) and an access log given with ``--access-log`` (a real one from
shared/data, plus a broken one whose lines are counted, not fatal)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .conftest import CHROME, LOWER_BUDGET, POLICY, csrf_of, login
from .conftest import site_and_dashboard as serve_site_and_dashboard

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
APACHE = SHARED / "elastic-apache-logs" / "apache_logs"
PEOPLE = [f"2001:db8:{i:x}::7" for i in range(1, 21)]  # each in a network of its own
READ = 6
"""Profiles each person reads; the draft (LOWER_BUDGET: 3 an hour) refuses the last four."""
STRICT_RATE = POLICY + "\n[limits.per_ip]\nrequests_per_minute = 5\n"


@contextmanager
def site_and_dashboard(
    tmp: Path, share: float, access_logs: list[Path] | None = None
) -> Iterator[tuple[str, str]]:
    """A site recording every request of ``share`` of addresses, and a dashboard on its store."""
    policy = POLICY + f"\n[privacy]\nrecord_allowed_share = {share}\n"
    served = serve_site_and_dashboard(tmp, policy, access_logs=access_logs or [])
    with served as (dash, site, state_url, _, warden):
        headers = {"user-agent": CHROME, "accept": "text/html"}
        with httpx.Client(base_url=site.url, timeout=10) as client:
            for i, ip in enumerate(PEOPLE):  # people reading a few scattered profiles: all allowed
                for n in range(READ):
                    record = (i * 1009 + n * 7919) % 100_003
                    answer = client.get(f"/people/{record}", headers={**headers, "x-forwarded-for": ip})
                    assert answer.status_code == 200
        warden.store.flush()
        yield dash.url, state_url


def _cell(html: str, policy: str, action: str) -> tuple[int, int]:
    """(replayed count, count shown) of one cell of the replay table."""
    found = re.search(rf'data-replayed="(\d+)" data-policy="{policy}" data-action="{action}">(\d+)<', html)
    assert found, f"no {policy}/{action} cell"
    return int(found.group(1)), int(found.group(2))


def _replay(base: str, text: str, **params: str) -> str:
    with login(base, "ada") as ada:
        saved = ada.post(
            "/policy/draft", data={"csrf": csrf_of(ada.get("/policy").text), "do": "save", "text": text}
        )
        assert saved.status_code == 303
    with login(base, "vic") as vic:  # a viewer may replay
        page = vic.get("/policy", params={"replay": "1", "hours": "1", **params})
        assert page.status_code == 200
        return page.text


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_sampled_replay_shows_a_stricter_draft_newly_refusing_allowed_people(
    tmp_path: Path, share: float
) -> None:
    with site_and_dashboard(tmp_path, share) as (dash, _):
        html = _replay(dash, LOWER_BUDGET, source="sampled")
        refusals = _replay(dash, LOWER_BUDGET, source="events")
    replayed_allow, shown_allow = _cell(html, "current", "allow")
    # Every request of the sampled people was recorded, all of them allowed under the policy in force...
    assert replayed_allow > 0 and replayed_allow % READ == 0
    assert replayed_allow <= len(PEOPLE) * READ
    assert sum(_cell(html, "current", a)[0] for a in ("throttle", "challenge", "block")) == 0
    # ...and the draft (a budget of 3 profiles an hour, refused from the third) refuses four of
    # each person's six.
    summary = re.search(r'id="replay-summary">(.*?)</p>', html, re.S)
    assert summary and re.search(r"\b(\d+) more strictly", summary.group(1))
    stricter = int(re.search(r"\b(\d+) more strictly", summary.group(1)).group(1))  # type: ignore[union-attr]
    assert stricter == replayed_allow * 4 // READ
    assert _cell(html, "draft", "allow")[0] == replayed_allow * 2 // READ
    # Counts are scaled by the share, and the page says so.
    assert shown_allow == round(replayed_allow / share)
    if share < 1:
        assert 'id="replay-scaled"' in html and "scaled by 1/0.5" in html
        assert replayed_allow < len(PEOPLE) * READ  # a sample, not everyone
    else:
        assert 'id="replay-scaled"' not in html and replayed_allow == len(PEOPLE) * READ
    # The recorded refusals alone hold none of this traffic: it was all allowed.
    assert "non-allowed decisions only" in refusals
    assert re.search(r'id="replay-summary">0 recorded requests replayed', refusals)


def test_without_sampling_the_draft_shows_nothing_new(tmp_path: Path) -> None:
    with site_and_dashboard(tmp_path, 0.0) as (dash, _):
        html = _replay(dash, LOWER_BUDGET, source="sampled")
    assert _cell(html, "current", "allow") == (0, 0)
    assert 'id="replay-no-sample"' in html


@pytest.mark.skipif(not APACHE.is_file(), reason="shared data not present")
def test_access_log_replay_over_http(tmp_path: Path) -> None:
    broken = tmp_path / "broken.log"
    broken.write_text('not a log line <script>alert(1)</script>\n{"half": \n', encoding="utf-8")
    with site_and_dashboard(tmp_path, 0.0, [APACHE, broken]) as (dash, _):
        html = _replay(dash, STRICT_RATE, source="log", hours="24")
        with login(dash, "vic") as vic:
            assert 'value="log"' in vic.get("/policy").text  # offered, since a log was given
    total = sum(_cell(html, "current", a)[0] for a in ("allow", "throttle", "challenge", "block"))
    allowed = _cell(html, "current", "allow")[0]
    # All traffic of the log's last day, most of it allowed; the draft's 5 a minute refuses some.
    assert 1000 < total < 10_000 and allowed > total * 0.9
    assert _cell(html, "draft", "allow")[0] < allowed
    assert re.search(r"requests from the access log replayed \(2015-05-19 .*? to 2015-05-20 ", html)
    # The broken file's lines are counted and shown (escaped), and stop nothing.
    assert re.search(r'id="replay-bad-lines">2<', html) and "10002 lines read" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    # Addresses from the log are shown pseudonymised, as everywhere on the dashboard.
    changed = re.search(r'<table class="changed">(.*?)</table>', html, re.S)
    assert changed and "ip~" in changed.group(1)
    assert not re.search(r'class="mono">\d+\.\d+\.\d+\.\d+<', changed.group(1))


def test_the_log_source_is_not_offered_without_a_log(tmp_path: Path) -> None:
    with site_and_dashboard(tmp_path, 0.0) as (dash, _):
        html = _replay(dash, LOWER_BUDGET, source="log")
    assert 'value="log"' not in html and "non-allowed decisions only" in html
