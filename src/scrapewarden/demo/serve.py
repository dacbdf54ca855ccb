"""Serve the demo site in this process: ``python -m scrapewarden.demo.serve --port P ...``.

The scenario runner starts one of these per regime (protected, per-IP limit, none), so every
site has its own process and interpreter lock, as it would in production.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--regime", choices=("protected", "per_ip", "none"), default="protected")
    parser.add_argument("--policy", default=None, help="TOML policy for the protected regime")
    parser.add_argument("--state", default=None, help="state URL (default: the policy's state key)")
    parser.add_argument(
        "--under-attack",
        action="store_true",
        help="protected regime: challenge every visitor without clearance (static assets excepted)",
    )
    parser.add_argument(
        "--dashboard",
        default=None,
        metavar="HOST:PORT",
        help="protected regime: also serve the dashboard over this site's Warden (loopback only); "
        "the one-off admin's password is read from standard input",
    )
    parser.add_argument("--dashboard-user", default="demo-admin")
    args = parser.parse_args(argv)

    from .site import create_app

    app = create_app(
        seed=args.seed,
        people=args.people,
        regime=args.regime,
        policy=args.policy,
        state=args.state,
        under_attack=args.under_attack,
    )
    logging.basicConfig(level=logging.WARNING)
    dashboard = None
    warden = getattr(app, "warden", None)
    if args.dashboard and warden is not None:
        from .dashboard import DashboardThread, parse_loopback

        host, port = parse_loopback(args.dashboard)
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            parser.error("--dashboard: no password on standard input")
        dashboard = DashboardThread(warden, host, port, args.dashboard_user, password)
    try:
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            access_log=False,
            proxy_headers=False,  # scrapewarden (or the baseline) reads X-Forwarded-For itself
            lifespan="off",
        )
    finally:
        if dashboard is not None:
            dashboard.stop()
        # Stopped (SIGTERM, Ctrl-C): file the incident findings still being counted and close
        # the store, so `scrapewarden incidents list` after a demo names everything served.
        if warden is not None:
            warden.close()


if __name__ == "__main__":
    main()
