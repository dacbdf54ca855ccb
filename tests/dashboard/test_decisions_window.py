"""The "decisions by action over time" chart: a bar width per window, bars aligned to it."""

from __future__ import annotations

import pytest

from scrapewarden.dashboard import views
from scrapewarden.state.base import Event
from scrapewarden.state.memory import MemoryStore

NOW = 1_800_000_037.0  # 37 s past a whole minute


@pytest.mark.parametrize(
    ("hours", "width", "bars"),
    [(1, 60, 60), (6, 300, 72), (24, 900, 96), (168, 7200, 84), (2, 120, 60), (744, 44640, 60)],
)
def test_every_window_gets_a_readable_number_of_bars(hours: int, width: int, bars: int) -> None:
    start, end, count = views.aligned_window(NOW, hours)
    assert views.bucket_seconds(hours) == width and count == bars
    assert end - start == hours * 3600 and start % width == 0 and end % width == 0
    assert end - width <= NOW < end  # the last bar holds now


def test_bars_keep_their_place_from_one_refresh_to_the_next() -> None:
    a = views.aligned_window(NOW, 1)
    b = views.aligned_window(NOW + 20, 1)  # same minute
    c = views.aligned_window(NOW + 30, 1)  # the next minute began
    assert a == b and c[0] == a[0] + 60


def test_the_overview_counts_the_last_hour_in_minutes() -> None:
    store = MemoryStore()
    for ago in (5, 6, 65, 3000, 7200):
        store.record_event(
            Event(ts=NOW - ago, action="block", enforced=True, method="GET", ip="ip~a", path="/", score=1.0)
        )
    data = views.overview(store, now=NOW, hours=1)
    assert len(data.series.buckets) == 60
    assert sum(data.series.buckets[-1].values()) == 2  # 5 and 6 s ago: this minute
    assert sum(data.series.buckets[-2].values()) == 1  # 65 s ago: the minute before
    assert sum(sum(b.values()) for b in data.series.buckets) == 4  # two hours ago is not drawn
