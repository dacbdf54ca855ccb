"""Pieces every load benchmark shares: targets taking turns, medians over rounds, clean exits.

Absolute numbers on a shared machine drift by tens of percent from run to run, so the targets
of one benchmark take turns (round-robin, starting one later each round) and the median per
target is reported, together with every round's figures.
"""

from __future__ import annotations

import signal
import statistics
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from .load_result import LoadResult

MIN_SHARE_2XX = 0.99
"""Below this a run measured refusals, not overhead, and is flagged as not valid."""


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit while running, so ``finally`` blocks stop the servers.

    (Ctrl-C already raises KeyboardInterrupt, which unwinds the same way.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def round_robin(names: Sequence[str], rounds: int) -> Iterator[tuple[int, int, str]]:
    """``(round_number, seed, name)`` for every target in every round, in turns.

    Round ``r`` starts with target ``r mod len(names)``, so no target always runs first (on a
    cold machine) or last; ``seed`` differs for every run, so every run draws its own requests.
    """
    for round_number in range(rounds):
        shift = round_number % len(names) if names else 0
        for position, name in enumerate([*names[shift:], *names[:shift]]):
            yield round_number, round_number * len(names) + position, name


def summarize(results: list[LoadResult]) -> dict[str, Any]:
    """Medians of the rates and latencies over the rounds, totals of the counts, and each round."""
    requests = sum(r.requests for r in results)
    non_2xx = sum(r.non_2xx for r in results)
    share = (requests - non_2xx) / requests if requests else 0.0
    return {
        "requests_per_s": round(statistics.median(r.requests_per_s for r in results), 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in results), 3),
        "p99_ms": round(statistics.median(r.p99_ms for r in results), 3),
        "non_2xx": non_2xx,
        "errors": sum(r.errors for r in results),
        "requests": requests,
        "share_2xx": round(share, 5),
        "ok": requests > 0 and share >= MIN_SHARE_2XX,
        "per_round": [
            {
                "requests_per_s": round(r.requests_per_s, 1),
                "p50_ms": round(r.p50_ms, 3),
                "p99_ms": round(r.p99_ms, 3),
            }
            for r in results
        ],
    }
