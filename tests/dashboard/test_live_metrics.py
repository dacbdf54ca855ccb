"""Requests per second from Prometheus text: parsing, rates between readings, sources, URLs."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter

from scrapewarden.dashboard.live_metrics import (
    MIN_GAP,
    LiveRates,
    LocalSource,
    MetricsReadError,
    MetricsUrlError,
    Reading,
    SourceRate,
    check_metrics_url,
    decisions_from_text,
    live_figure,
    pick_earlier,
    rates_between,
    sources_for,
)

PAGE = """\
# HELP scrapewarden_decisions_total Decisions made, by action.
# TYPE scrapewarden_decisions_total counter
scrapewarden_decisions_total{action="allow"} 90.0
scrapewarden_decisions_total{action="challenge"} 6.0
scrapewarden_decisions_total{action="block"} 4.0
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 123.0
"""


def page(**counts: float) -> str:
    lines = ["# TYPE scrapewarden_decisions_total counter"]
    lines += [f'scrapewarden_decisions_total{{action="{a}"}} {n}' for a, n in counts.items()]
    return "\n".join(lines) + "\n"


def test_decisions_are_read_per_action_and_other_metrics_ignored() -> None:
    assert decisions_from_text(PAGE) == {"allow": 90.0, "challenge": 6.0, "block": 4.0}


@pytest.mark.parametrize(
    "text",
    [
        "<html><body>not metrics</body></html>",
        "# TYPE other_total counter\nother_total 3\n",  # metrics, but not a door's
        "",
    ],
)
def test_a_page_that_is_not_a_doors_metrics_is_a_read_error(text: str) -> None:
    with pytest.raises(MetricsReadError):
        decisions_from_text(text)


def test_rates_between_two_readings_and_a_restarted_counter_counts_from_zero() -> None:
    before = Reading(100.0, {"allow": 100.0, "block": 10.0})
    after = Reading(110.0, {"allow": 150.0, "block": 4.0, "challenge": 20.0})
    rates = rates_between(before, after)
    # allow grew by 50 in 10 s; block went down (restart): its 4 are new; challenge is new.
    assert rates == {"allow": 5.0, "block": 0.4, "challenge": 2.0}
    with pytest.raises(ValueError):
        rates_between(after, before)


def test_the_earlier_reading_is_the_newest_one_at_least_min_gap_old() -> None:
    history = [Reading(t, {}) for t in (0.0, 5.0, 9.5)]
    assert pick_earlier(history, 10.0, min_gap=1.0) == history[1]
    assert pick_earlier(history, 10.0, min_gap=0.25) == history[2]
    assert pick_earlier(history, 0.5, min_gap=1.0) is None


class Fake:
    """A source whose page the test sets (or makes fail)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.text = page(allow=0)
        self.error: str | None = None

    def fetch(self) -> str:
        if self.error:
            raise MetricsReadError(self.error)
        return self.text


def test_live_rates_need_two_readings_and_report_a_missing_source() -> None:
    now = [1000.0]
    door, gone = Fake("door"), Fake("gone")
    gone.error = "unreachable (connection refused)"
    live = LiveRates([door, gone], clock=lambda: now[0])
    first = live.read()
    assert first[0].ok and first[0].rates is None and first[0].totals == {"allow": 0.0}
    assert not first[1].ok and "unreachable" in first[1].error
    door.text = page(allow=40, challenge=8, block=2)
    now[0] += 10
    second = live.read()
    assert second[0].rates == {"allow": 4.0, "challenge": 0.8, "block": 0.2}
    assert second[0].seconds == 10 and second[0].per_second == pytest.approx(5.0)
    # A second viewer right after: too soon to divide by; measured from the older reading.
    door.text = page(allow=41, challenge=8, block=2)
    now[0] += MIN_GAP / 10
    third = live.read()
    assert third[0].seconds == pytest.approx(10 + MIN_GAP / 10)
    figure = live_figure(third)
    assert figure.per_second == pytest.approx(51 / (10 + MIN_GAP / 10))
    assert figure.refused_share == pytest.approx(10 / 51)
    assert list(figure.by_action) == ["allow", "challenge", "block"]  # largest first


def test_the_figure_is_unknown_until_some_source_has_a_rate() -> None:
    figure = live_figure([SourceRate("a", totals={"allow": 3.0}), SourceRate("b", error="unreachable")])
    assert figure.per_second is None and figure.refused_share is None and len(figure.sources) == 2
    idle = live_figure([SourceRate("a", totals={}, rates={"allow": 0.0}, seconds=5.0)])
    assert idle.per_second == 0 and idle.refused_share is None


def test_the_local_source_reads_a_registry() -> None:
    registry = CollectorRegistry()
    counter = Counter("scrapewarden_decisions", "d", ["action"], registry=registry)
    counter.labels("allow").inc(7)
    assert decisions_from_text(LocalSource(registry).fetch()) == {"allow": 7.0}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9100/metrics",
        "http://127.9.9.9:9100/metrics",
        "https://localhost:9100/metrics",
        "http://[::1]:9100/metrics",
    ],
)
def test_loopback_metrics_urls_are_accepted(url: str) -> None:
    assert check_metrics_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:9100/metrics",
        "http://metrics.example:9100/metrics",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "ftp://127.0.0.1/metrics",
        "http://user:secret@127.0.0.1:9100/metrics",
        "127.0.0.1:9100/metrics",
    ],
)
def test_other_metrics_urls_are_refused(url: str) -> None:
    with pytest.raises(MetricsUrlError):
        check_metrics_url(url)


def test_named_hosts_may_be_read() -> None:
    url = "http://metrics.example:9100/metrics"
    assert check_metrics_url(url, ["Metrics.Example"]) == url
    assert [s.name for s in sources_for([url, url], ["metrics.example"], local=True)] == ["this process", url]
    with pytest.raises(MetricsUrlError):
        sources_for(["http://10.0.0.5/metrics"], ["metrics.example"])
