"""What recording a sample of allowed requests costs (``[privacy] record_allowed_share``).

Runs ``Warden.decide`` over the synthetic traffic of ``scrapewarden bench engine`` (people,
visitors, a crawler and scrapers; about a quarter of it refused) on a memory store and on a
SQLite file, at each share, interleaved round by round so that a busy machine weighs on every
share alike, and prints the best and the median round of each, and how many events each share
stored. No asserts: this is a measurement (noisy on a shared machine: compare the best rounds).

    .venv/bin/python bench/record_share_cost.py [--rounds 5] [--requests 60000] [--shares 0,0.01,0.05,1]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

from scrapewarden.bench.engine_bench import synthetic_requests
from scrapewarden.bench.state_bench import _policy
from scrapewarden.warden import Warden


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=60_000)
    parser.add_argument("--actors", type=int, default=5_000)
    parser.add_argument("--shares", default="0,0.01,0.05,1")
    args = parser.parse_args()
    shares = [float(s) for s in args.shares.split(",")]
    facts = synthetic_requests(args.requests, args.actors, 1)
    gc.collect()
    gc.freeze()  # the pre-built requests are the harness's, not the Warden's
    rates: dict[tuple[str, float], list[float]] = {}
    events: dict[float, int] = {}
    with tempfile.TemporaryDirectory(prefix="sw-share-") as tmp:
        for round_ in range(args.rounds):
            for share in shares:
                for backend in ("memory", "sqlite"):
                    url = (
                        "memory://" if backend == "memory" else f"sqlite:///{Path(tmp)}/r{round_}-{share}.db"
                    )
                    warden = Warden(_policy(share), state=url)
                    started = time.perf_counter()
                    for f in facts:
                        warden.decide(f)
                    warden.store.flush()
                    elapsed = time.perf_counter() - started
                    if backend == "sqlite" and round_ == 0:
                        events[share] = len(warden.store.events(limit=10**8))
                    warden.close()
                    rates.setdefault((backend, share), []).append(len(facts) / elapsed)
    for (backend, share), got in sorted(rates.items()):
        line = f"{backend:7} share {share:<5g} best {max(got):>8,.0f}/s"
        line += f"  median {statistics.median(got):>8,.0f}/s"
        print(line + (f"  events stored {events[share]:,}" if backend == "sqlite" else ""))


if __name__ == "__main__":
    main()
