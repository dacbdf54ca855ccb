"""What the metrics add to a decision, in µs.

Runs ``Warden.decide`` on a memory store over fresh browser requests (distinct addresses),
alternating rounds with the metrics' recording on and replaced by a no-op, and prints the best
round of each; then times the recording alone for an allow (no evidence) and a decision with
two findings. No asserts: this is a measurement (noisy on a shared machine: compare the best
rounds, run it twice). Set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory to measure
multiprocess mode.

    .venv/bin/python bench/metrics_cost.py [--rounds 30] [--decisions 5000]
"""

from __future__ import annotations

import argparse
import time

import scrapewarden.warden as warden_module
from scrapewarden import metrics
from scrapewarden.core.decision import Action, Decision, Evidence
from scrapewarden.core.policy import Policy
from scrapewarden.warden import Warden

HEADERS = [
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"accept", b"text/html,application/xhtml+xml"),
    (b"accept-language", b"en-GB,en;q=0.5"),
    (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-dest", b"document"),
]


def _no_recording(decision: Decision, seconds: float) -> None:
    pass


def decide_round(first: int, n: int) -> float:
    """µs per ``Warden.decide`` over ``n`` requests from fresh addresses."""
    warden = Warden(Policy(), state="memory://")
    facts = [
        warden.facts_http(
            peer=f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
            method="GET",
            path=f"/p/{i % 50}",
            query="",
            headers=HEADERS,
        )
        for i in range(first, first + n)
    ]
    started = time.perf_counter()
    for one in facts:
        warden.decide(one)
    elapsed = time.perf_counter() - started
    warden.close()
    return elapsed / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--decisions", type=int, default=5000)
    args = parser.parse_args()
    print(f"multiprocess mode: {metrics.MULTIPROCESS}")

    recording = warden_module.record_decision
    best = {True: float("inf"), False: float("inf")}
    for r in range(args.rounds):
        for on in (True, False) if r % 2 else (False, True):
            warden_module.record_decision = recording if on else _no_recording
            best[on] = min(best[on], decide_round(r * args.decisions, args.decisions))
    warden_module.record_decision = recording
    print(
        f"Warden.decide, best round: {best[True]:.2f} µs with the metrics, {best[False]:.2f} µs "
        f"without: {best[True] - best[False]:+.2f} µs"
    )

    allow = Decision(Action.ALLOW, 0.0)
    found = Decision(Action.THROTTLE, 50.0, [Evidence("rate", 40, "r"), Evidence("client.bot_ua", 20, "u")])
    for decision, name in ((allow, "an allow, no evidence"), (found, "two findings")):
        fastest = float("inf")
        for _ in range(10):
            started = time.perf_counter()
            for _ in range(50_000):
                metrics.record_decision(decision, 0.00003)
            fastest = min(fastest, (time.perf_counter() - started) / 50_000 * 1e6)
        print(f"recording alone, {name}: {fastest:.2f} µs")


if __name__ == "__main__":
    main()
