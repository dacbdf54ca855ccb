"""The dashboard's background reader of the metrics: samples, failing sources, the thread's life."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, Counter

from scrapewarden.dashboard.live_metrics import HttpSource, LiveRates, LocalSource
from scrapewarden.dashboard.rate_sampler import RateSampler

T0 = 1_800_000_000.0
DEADLINE = 20.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Broken:
    """A source with a bug of its own (not a read error): the sampler must survive it."""

    name = "broken"

    def fetch(self) -> str:
        raise RuntimeError("boom")


def registry() -> tuple[CollectorRegistry, Counter]:
    reg = CollectorRegistry()
    return reg, Counter("scrapewarden_decisions", "Decisions made, by action.", ["action"], registry=reg)


def dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/metrics"  # nobody listens there now


def test_samples_make_a_series_and_failing_sources_are_marked() -> None:
    reg, decisions = registry()
    local = LocalSource(reg)
    dead = HttpSource(dead_url(), timeout=2)
    clock = Clock()
    sampler = RateSampler(LiveRates([local, dead, Broken()]), interval=5, clock=clock)
    for second in range(0, 20, 5):
        clock.now = T0 + second
        decisions.labels("allow").inc(50)
        decisions.labels("block").inc(5)
        taken = sampler.sample()
        assert set(taken.totals) == {"this process"}
        assert taken.errors[dead.name].startswith("unreachable")
        assert taken.errors["broken"] == "failed (RuntimeError)"
    series = sampler.series()
    assert len(series.points) == 3 and series.enough
    assert [p.rates for p in series.points] == [{"allow": 10.0, "block": 1.0}] * 3
    assert series.missing == ("broken", dead.name) and series.actions == ["allow", "block"]
    assert series.start == T0 and series.end == T0 + 15
    # Not running: the page reads on demand (no thread), as before the sampler existed.
    assert not sampler.running and sampler.thread is None
    now = {s.name: s for s in sampler.current()}
    assert now["this process"].ok and not now[dead.name].ok and not now["broken"].ok


def test_the_ring_buffer_keeps_at_most_the_window() -> None:
    reg, decisions = registry()
    clock = Clock()
    sampler = RateSampler(LiveRates([LocalSource(reg)]), interval=1, window=10, clock=clock)
    for second in range(100):
        clock.now = T0 + second
        decisions.labels("allow").inc()
        sampler.sample()
    kept = sampler.samples()
    assert len(kept) <= 12 and kept[-1].at == T0 + 99
    assert [p.at - T0 for p in sampler.series().points] == [90 + i for i in range(10)]


def test_the_thread_samples_every_interval_and_stops_when_asked() -> None:
    reg, decisions = registry()
    sampler = RateSampler(LiveRates([LocalSource(reg), Broken()]), interval=0.05)
    decisions.labels("allow").inc()
    sampler.start()
    try:
        thread = sampler.thread
        assert thread is not None and thread.daemon and sampler.running
        sampler.start()  # a second start is no second thread
        assert sampler.thread is thread
        deadline = time.monotonic() + DEADLINE
        while len(sampler.samples()) < 3:  # the broken source did not stop it
            assert time.monotonic() < deadline, "the sampler took no samples"
            time.sleep(0.02)
        decisions.labels("block").inc(10)
        while not any("block" in p.rates and p.rates["block"] > 0 for p in sampler.series().points):
            assert time.monotonic() < deadline, "the block decisions never showed"
            time.sleep(0.02)
        (local, broken) = sampler.current()  # from the samples now
        assert local.ok and local.totals == {"allow": 1.0, "block": 10.0} and not broken.ok
    finally:
        sampler.stop()
    assert not thread.is_alive() and not sampler.running
    assert thread not in threading.enumerate()
    taken = len(sampler.samples())
    time.sleep(0.2)
    assert len(sampler.samples()) == taken  # stopped means no more samples


def test_without_sources_there_is_no_thread_and_bad_intervals_are_refused() -> None:
    sampler = RateSampler(LiveRates([]))
    sampler.start()
    assert sampler.thread is None and sampler.current() == [] and not sampler.series().points
    sampler.stop()  # stopping what never started is fine
    for interval in (0, -1, 10_000):
        with pytest.raises(ValueError):
            RateSampler(LiveRates([]), interval=interval)
