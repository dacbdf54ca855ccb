"""Requests per second over time from samples of decision counters: restarts, missing sources, gaps."""

from __future__ import annotations

import pytest

from scrapewarden.dashboard.rate_series import (
    MIN_POINTS,
    Point,
    Sample,
    point_between,
    rate_points,
    rate_series,
    source_rates,
    stack_order,
    steps,
)

T0 = 1_800_000_000.0
DOOR, OTHER = "http://127.0.0.1:9100/metrics", "this process"


def sample(at: float, errors: dict[str, str] | None = None, **sources: dict[str, float]) -> Sample:
    names = {"door": DOOR, "other": OTHER}
    return Sample(T0 + at, {names[k]: v for k, v in sources.items()}, errors or {})


def test_a_point_is_the_growth_of_every_source_over_the_interval() -> None:
    before = sample(0, door={"allow": 100, "block": 10}, other={"allow": 5})
    after = sample(5, door={"allow": 150, "block": 20}, other={"allow": 10, "challenge": 5})
    point = point_between(before, after)
    assert point is not None
    assert point.at == T0 + 5 and point.seconds == 5 and point.start == T0
    # allow: (50 + 5) / 5; block 10 / 5; challenge is new in "other": all 5 of it.
    assert point.rates == {"allow": 11.0, "block": 2.0, "challenge": 1.0}
    assert point.per_second == 14.0 and point.missing == ()


def test_a_restarted_counter_counts_from_zero() -> None:
    before = sample(0, door={"allow": 1000, "block": 50})
    after = sample(10, door={"allow": 30, "block": 60})  # the door restarted: allow went down
    point = point_between(before, after)
    assert point is not None and point.rates == {"allow": 3.0, "block": 1.0}


def test_a_source_missing_at_either_end_is_left_out_and_named() -> None:
    samples = [
        sample(0, door={"allow": 0}, other={"allow": 0}),
        sample(5, errors={OTHER: "unreachable"}, door={"allow": 50}),
        sample(10, door={"allow": 100}, other={"allow": 40}),
        sample(15, door={"allow": 150}, other={"allow": 90}),
    ]
    points = rate_points(samples, now=T0 + 15, window=3600, max_gap=20)
    assert [p.rates for p in points] == [{"allow": 10.0}, {"allow": 10.0}, {"allow": 20.0}]
    assert [p.missing for p in points] == [(OTHER,), (OTHER,), ()]
    # Nothing is guessed for the interval it was missing in: its 40 never show.


def test_no_point_when_no_source_was_read_at_both_ends() -> None:
    down = sample(5, errors={DOOR: "unreachable"})
    assert point_between(sample(0, door={"allow": 1}), down) is None
    assert point_between(down, sample(10, door={"allow": 1})) is None
    # A source read at one end only (it was added, or was down) does not count either.
    assert point_between(sample(0, other={"allow": 1}), sample(5, door={"allow": 9})) is None


def test_gaps_make_no_point() -> None:
    samples = [
        sample(0, door={"allow": 0}),
        sample(5, door={"allow": 50}),
        sample(60, door={"allow": 600}),  # the sampler was stopped for 55 s: no average across it
        sample(65, door={"allow": 650}),
        sample(64, door={"allow": 700}),  # the clock went back a second: no point
        sample(69, door={"allow": 740}),
    ]
    points = rate_points(samples, now=T0 + 70, window=3600, max_gap=15)
    assert [(p.at - T0, p.seconds) for p in points] == [(5, 5), (65, 5), (69, 5)]
    assert [p.per_second for p in points] == [10.0, 10.0, 8.0]


def test_only_the_window_is_kept_and_nothing_after_now() -> None:
    samples = [sample(t, door={"allow": t * 2}) for t in range(0, 100, 10)]
    points = rate_points(samples, now=T0 + 60, window=30, max_gap=15)
    assert [p.at - T0 for p in points] == [40, 50, 60]
    assert all(p.per_second == 2.0 for p in points)


def test_the_series_starts_at_the_first_point_until_a_window_has_passed() -> None:
    samples = [sample(t, door={"allow": t}) for t in (0, 5, 10)]
    young = rate_series(samples, now=T0 + 12, window=3600, interval=5, max_gap=15)
    assert young.start == T0 and young.end == T0 + 12 and young.enough
    assert len(young.points) == MIN_POINTS and young.peak == 1.0
    one = rate_series(samples[:2], now=T0 + 6, window=3600, interval=5, max_gap=15)
    assert not one.enough and len(one.points) == 1
    empty = rate_series([], now=T0, window=3600, interval=5, max_gap=15)
    assert empty.points == [] and empty.start == T0 - 3600 and empty.actions == []
    old = rate_series(samples, now=T0 + 3700, window=3600, interval=5, max_gap=15)
    assert old.points == [] and old.start == T0 + 100


def test_actions_stack_allow_first_then_by_severity_then_others_by_name() -> None:
    points = [Point(T0, 1, {"block": 1, "zzz": 1, "allow": 1}), Point(T0 + 1, 1, {"aaa": 1, "throttle": 1})]
    assert stack_order(points) == ["allow", "throttle", "block", "aaa", "zzz"]


def test_each_source_now_from_the_last_two_samples() -> None:
    names = [DOOR, OTHER, "third"]
    samples = [
        sample(0, door={"allow": 10}),
        sample(2, errors={OTHER: "answered HTTP 500"}, door={"allow": 30, "block": 4}),
    ]
    door, other, third = source_rates(samples, names, max_gap=10)
    assert door.ok and door.rates == {"allow": 10.0, "block": 2.0} and door.seconds == 2
    assert door.per_second == 12.0
    assert not other.ok and other.error == "answered HTTP 500"
    assert not third.ok and third.error == "not read yet"
    # A first reading has totals and no rate; readings too far apart give no rate either.
    (first,) = source_rates(samples[:1], [DOOR], max_gap=10)
    assert first.ok and first.totals == {"allow": 10} and first.rates is None
    (stale,) = source_rates(samples, [DOOR], max_gap=1)
    assert stale.ok and stale.rates is None
    assert source_rates([], names, max_gap=10) == []


def test_steps_average_neighbours_over_time_and_never_span_a_gap() -> None:
    points = [Point(T0 + 5 * i, 5, {"allow": float(i)}) for i in range(1, 9)]
    assert steps(points, 100) == points
    merged = steps(points, 4)  # two points a step
    assert [(p.start - T0, p.at - T0) for p in merged] == [(0, 10), (10, 20), (20, 30), (30, 40)]
    assert [p.rates["allow"] for p in merged] == [1.5, 3.5, 5.5, 7.5]
    # Unequal lengths weigh by time; a gap splits a step.
    uneven = [Point(T0 + 1, 1, {"allow": 10.0}), Point(T0 + 4, 3, {"allow": 2.0, "block": 4.0})]
    (one,) = steps(uneven, 1)
    assert one.seconds == 4 and one.rates == {"allow": 4.0, "block": 3.0}
    gapped = [Point(T0 + 5, 5, {"allow": 1.0}), Point(T0 + 60, 5, {"allow": 3.0}), Point(T0 + 65, 5, {})]
    assert [(p.start - T0, p.at - T0) for p in steps(gapped, 1)] == [(0, 5), (55, 65)]
    with pytest.raises(ValueError):
        steps(points, 0)
