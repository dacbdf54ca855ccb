"""Requests per second over time, from samples of the doors' decision counters (no I/O, no clock).

The dashboard's sampler (``rate_sampler``) reads every metrics source every few seconds and keeps
what it read as :class:`Sample` objects; everything shown from them is computed here, from the
samples and the time passed in:

* a :class:`Point` per pair of consecutive samples: the decisions per second per action between
  them, added up over the sources read at both ends. A source that could not be read at one end
  is left out of that point and named in ``missing`` (its traffic is not guessed); a point no
  source could be counted for is not made at all, so the chart shows a gap instead of a false
  zero. A counter lower than before (the door restarted) counts from zero, as in
  :func:`~scrapewarden.dashboard.live_metrics.rates_between`.
* two samples further apart than ``max_gap`` (the sampler was stopped, the machine slept) or
  not in time order (the wall clock was set back) make no point either: a gap again, since an
  average over such a span would hide everything that happened in it.
* :func:`source_rates`: each source's state now (its rate over the last interval, or why it
  could not be read), for the Overview's table.
* :func:`steps`: the points merged into at most a fixed number of steps, so that an hour of
  points draws as a chart of a bounded size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from .live_metrics import Reading, SourceRate, rates_between

STACK_ORDER = ("allow", "throttle", "challenge", "block")
"""Actions from the bottom of the chart up; any other action goes on top, by name."""


@dataclass(frozen=True, slots=True)
class Sample:
    """What one round of reading the sources gave."""

    at: float
    """When (epoch seconds)."""
    totals: Mapping[str, Mapping[str, float]]
    """Per source read: decisions per action since the source started counting."""
    errors: Mapping[str, str] = field(default_factory=dict)
    """Per source that could not be read: why."""


@dataclass(frozen=True, slots=True)
class Point:
    """Decisions per second over one interval between two samples."""

    at: float
    """The end of the interval (epoch seconds)."""
    seconds: float
    """Its length."""
    rates: Mapping[str, float]
    """Per action, added up over the sources counted."""
    missing: tuple[str, ...] = ()
    """Sources not counted in it (not read at one end of the interval)."""

    @property
    def start(self) -> float:
        return self.at - self.seconds

    @property
    def per_second(self) -> float:
        return sum(self.rates.values())


def point_between(before: Sample, after: Sample) -> Point | None:
    """The point from ``before`` to ``after``; None when no source was read at both ends or the
    samples are not in time order."""
    span = after.at - before.at
    if span <= 0:
        return None
    rates: dict[str, float] = {}
    counted = 0
    for name, totals in after.totals.items():
        earlier = before.totals.get(name)
        if earlier is None:
            continue
        counted += 1
        for action, rate in rates_between(Reading(before.at, earlier), Reading(after.at, totals)).items():
            rates[action] = rates.get(action, 0.0) + rate
    if not counted:
        return None
    names = {*before.totals, *before.errors, *after.totals, *after.errors}
    missing = tuple(sorted(n for n in names if n not in before.totals or n not in after.totals))
    return Point(after.at, span, rates, missing)


def rate_points(samples: Sequence[Sample], *, now: float, window: float, max_gap: float) -> list[Point]:
    """The points of the last ``window`` seconds before ``now``, oldest first (samples oldest
    first; consecutive ones more than ``max_gap`` apart make no point)."""
    points = []
    for before, after in pairwise(samples):
        if after.at <= now - window or after.at > now or after.at - before.at > max_gap:
            continue
        point = point_between(before, after)
        if point is not None:
            points.append(point)
    return points


def stack_order(points: Iterable[Point]) -> list[str]:
    """The actions seen, in :data:`STACK_ORDER` then by name (the chart's bottom-up order)."""
    seen = {action for p in points for action in p.rates}
    return [a for a in STACK_ORDER if a in seen] + sorted(seen - set(STACK_ORDER))


def source_rates(samples: Sequence[Sample], names: Sequence[str], *, max_gap: float) -> list[SourceRate]:
    """Each source as of the newest sample: its rates since the sample before (when it was read
    in both, close enough in time), only its totals (a first reading), or why it was not read."""
    if not samples:
        return []
    last = samples[-1]
    before = samples[-2] if len(samples) > 1 else None
    usable = before is not None and 0 < last.at - before.at <= max_gap
    out = []
    for name in names:
        totals = last.totals.get(name)
        if totals is None:
            out.append(SourceRate(name, error=last.errors.get(name, "not read yet")))
            continue
        earlier = before.totals.get(name) if before is not None and usable else None
        if before is None or earlier is None:
            out.append(SourceRate(name, totals=totals))
            continue
        rates = rates_between(Reading(before.at, earlier), Reading(last.at, totals))
        out.append(SourceRate(name, totals=totals, rates=rates, seconds=last.at - before.at))
    return out


def steps(points: Sequence[Point], most: int) -> list[Point]:
    """``points`` merged into at most about ``most`` steps: runs of neighbouring points (no gap
    between them) are averaged over their time, ``ceil(len / most)`` points at a time. A step
    never spans a gap, so gaps stay visible."""
    if most < 1:
        raise ValueError("most must be at least 1")
    per_step = max(1, -(-len(points) // most))
    merged: list[Point] = []
    group: list[Point] = []
    for point in points:
        if group and (len(group) == per_step or not _adjacent(group[-1], point)):
            merged.append(_merge(group))
            group = []
        group.append(point)
    if group:
        merged.append(_merge(group))
    return merged


def _adjacent(before: Point, after: Point) -> bool:
    # Consecutive points of one sampler share an end (``start`` is computed: allow rounding).
    return abs(after.start - before.at) <= 1e-3


def _merge(group: Sequence[Point]) -> Point:
    if len(group) == 1:
        return group[0]
    seconds = sum(p.seconds for p in group)
    rates: dict[str, float] = {}
    for p in group:
        for action, rate in p.rates.items():
            rates[action] = rates.get(action, 0.0) + rate * p.seconds
    missing = tuple(sorted({n for p in group for n in p.missing}))
    return Point(group[-1].at, seconds, {a: total / seconds for a, total in rates.items()}, missing)


MIN_POINTS = 2
"""Points needed before the chart is drawn (one point is a single step, not yet a trend)."""


@dataclass(frozen=True, slots=True)
class RateSeries:
    """What the Overview draws: the points of the window, and the span the chart covers."""

    points: list[Point]
    actions: list[str]
    """Bottom-up stacking order."""
    start: float
    """The chart's left edge: the window's start, or the first point's start when the samples
    began later (a dashboard started a few minutes ago draws those minutes across the chart)."""
    end: float
    """Now."""
    interval: float
    """Seconds between samples, as configured."""
    window: float
    """The longest span shown (seconds)."""

    @property
    def enough(self) -> bool:
        return len(self.points) >= MIN_POINTS

    @property
    def missing(self) -> tuple[str, ...]:
        """Sources left out of at least one point."""
        return tuple(sorted({n for p in self.points for n in p.missing}))

    @property
    def peak(self) -> float:
        return max((p.per_second for p in self.points), default=0.0)


def rate_series(
    samples: Sequence[Sample], *, now: float, window: float, interval: float, max_gap: float
) -> RateSeries:
    points = rate_points(samples, now=now, window=window, max_gap=max_gap)
    start = max(now - window, points[0].start) if points else now - window
    return RateSeries(points, stack_order(points), start, now, interval, window)
