"""The middleware benchmark as a plain script: same runner as ``scrapewarden bench middleware``.

Run: ``.venv/bin/python bench/middleware.py [--duration 10] [--connections 32] [--rounds 3]
[--policy PATH] [--load-tool auto|wrk|python]``. Prints the JSON report.
"""

from __future__ import annotations

import argparse
import json
import sys

from scrapewarden.bench.middleware_bench import run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per target")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved runs per target; medians reported")
    parser.add_argument("--policy", default=None, help="TOML policy for the scrapewarden target")
    parser.add_argument("--load-tool", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args()
    report = run(
        duration=args.duration,
        connections=args.connections,
        rounds=args.rounds,
        policy=args.policy,
        load_tool=args.load_tool,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
