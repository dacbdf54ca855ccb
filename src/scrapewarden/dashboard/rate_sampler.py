"""The dashboard's background reader of the doors' metrics, for requests per second over time.

A :class:`RateSampler` reads every metrics source of the dashboard (``LiveRates.sources``: this
process's registry when it runs beside a deciding Warden, and every ``--metrics-url``) once
every ``interval`` seconds (5 by default) in a daemon thread, and keeps what it read in a ring
buffer of at most an hour of samples. The app starts it with its lifespan and stops it on
shutdown (``Dashboard.close`` stops it too). Bounded in every way: a fixed interval (a round
that took longer is followed by the next one at once, never by a burst of missed rounds), a
fixed-size buffer, and the fetch timeout of each source (``live_metrics.TIMEOUT``). A source
that cannot be read is marked with the reason in that sample; nothing a source does stops the
thread.

What the pages show is computed from the samples by ``rate_series`` (pure). Without a running
sampler (an app served without its lifespan) the Overview falls back to reading the sources
when a page asks, as before, and has no series to draw.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from .live_metrics import TIMEOUT, LiveRates, MetricsReadError, SourceRate, read_decisions
from .rate_series import RateSeries, Sample, rate_series, source_rates

DEFAULT_INTERVAL = 5.0
"""Seconds between two readings of the sources."""
WINDOW = 3600.0
"""The series kept and shown: the last hour."""
MIN_INTERVAL, MAX_INTERVAL = 0.05, 300.0

log = logging.getLogger(__name__)


class RateSampler:
    """Reads ``live.sources`` every ``interval`` seconds in a thread; keeps the last ``window``."""

    def __init__(
        self,
        live: LiveRates,
        *,
        interval: float = DEFAULT_INTERVAL,
        window: float = WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
            raise ValueError(f"the sampling interval is between {MIN_INTERVAL} and {MAX_INTERVAL} seconds")
        self.live = live
        self.interval = interval
        self.window = window
        self.clock = clock
        # Neighbouring samples further apart than this make no point (a gap): a few missed
        # rounds, or every source answering at its timeout, still count as neighbours.
        self.max_gap = 3 * interval + TIMEOUT * len(live.sources)
        self._samples: deque[Sample] = deque(maxlen=int(window / interval) + 2)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def names(self) -> list[str]:
        return [source.name for source in self.live.sources]

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    # -- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start sampling (nothing to do without sources, or when already running)."""
        if not self.live.sources or self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="scrapewarden-dashboard-rates", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread (at most one round: every fetch has a timeout)."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.interval + TIMEOUT * (len(self.live.sources) + 1))
            if thread.is_alive():
                log.warning("the metrics sampler did not stop in time")

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stopping.is_set():
            try:
                self.sample()
            except Exception:  # a bug must not end the series silently: logged, next round
                log.exception("reading the metrics sources failed")
            due += self.interval
            now = time.monotonic()
            if due < now:  # the round took longer than the interval: start the next one now
                due = now
            if self._stopping.wait(due - now):
                return

    def sample(self) -> Sample:
        """Read every source once and keep the result (the thread calls this every interval)."""
        totals: dict[str, dict[str, float]] = {}
        errors: dict[str, str] = {}
        for source in self.live.sources:
            try:
                totals[source.name] = read_decisions(source)
            except MetricsReadError as exc:  # whatever one source does, the others are still read
                errors[source.name] = str(exc)
        taken = Sample(self.clock(), totals, errors)
        with self._lock:
            self._samples.append(taken)
        return taken

    # -- what the pages read -------------------------------------------------------------------

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def series(self) -> RateSeries:
        return rate_series(
            self.samples(), now=self.clock(), window=self.window, interval=self.interval, max_gap=self.max_gap
        )

    def current(self) -> list[SourceRate]:
        """Each source now: from the newest samples when sampling, else read on demand."""
        samples = self.samples()
        if not self.running or not samples:
            return self.live.read()
        return source_rates(samples, self.names, max_gap=self.max_gap)
