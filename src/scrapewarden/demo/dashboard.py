"""The dashboard beside the demo's protected site: same process, same Warden, same store.

The demo's store is ``memory://`` by default, which only the protected site's own process can
see, so the dashboard is served by that process (:class:`DashboardThread`, its own uvicorn
server on a loopback port, in a thread) over the site's Warden. It then also reads the Warden's
metrics in-process for its live requests per second.

There is no default password. The ``scrapewarden demo`` command makes a random one
(:func:`new_login`), prints it once on its console, and hands it to the site's process on
standard input (never on the command line, where every process listing shows it, and never in a
log). The site's process creates the one-off admin and removes it when it stops, so a demo run
against a persistent ``--state`` leaves no login behind. Demo only: a real deployment creates
its users with ``scrapewarden users add``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:8090"
DEMO_USER = "demo-admin"
RATE_INTERVAL = 2.0


class DashboardAddressError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class DemoLogin:
    host: str
    port: int
    user: str = DEMO_USER
    password: str = field(default="", repr=False)

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.listen}/"


def parse_loopback(listen: str) -> tuple[str, int]:
    """``host:port`` on a loopback address (the demo's dashboard is for this machine only)."""
    from ..doors.authz import parse_listen

    host, port = parse_listen(listen)
    host = "127.0.0.1" if host == "localhost" else host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise DashboardAddressError(
            f"the demo serves its dashboard on loopback only (127.0.0.1 or ::1), not {host!r}"
        )
    return host, port


def _bindable(host: str, port: int) -> int | None:
    """``port``, or a free one on ``host`` when it is taken (or 0); None when nothing binds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for wanted in (port, 0) if port else (0,):
        with socket.socket(family) as sock:
            try:
                sock.bind((host, wanted))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    return None


def new_login(listen: str = DEFAULT_LISTEN) -> DemoLogin:
    """Where the dashboard will listen (the port asked for, another when it is taken) and a
    fresh random password. Raises :class:`DashboardAddressError`."""
    host, port = parse_loopback(listen)
    chosen = _bindable(host, port)
    if chosen is None:
        raise DashboardAddressError(f"cannot listen on {host}")
    return DemoLogin(host, chosen, DEMO_USER, secrets.token_urlsafe(18))


class DashboardThread:
    """The dashboard app over ``warden``, served from a thread of the site's process."""

    ACTOR = "scrapewarden demo"

    def __init__(self, warden: Any, host: str, port: int, user: str, password: str) -> None:
        import uvicorn

        from ..dashboard import accounts, audit_view
        from ..dashboard.app import create_app

        self.warden = warden
        self.user = user
        store = warden.store
        now = time.time()
        if store.get_user(user) is None:
            accounts.add_user(store, user, "admin", password, now=now)
        else:  # left by a demo that was killed before it could remove it: take it over
            accounts.set_role(store, user, "admin")
            accounts.set_password(store, user, password, now=now)
        audit_view.write(store, now, self.ACTOR, "user.add", user, role="admin", note="demo login")
        # A demo is short: read the (in-process, cheap) metrics every RATE_INTERVAL seconds, so
        # that its first minute already draws requests per second over time.
        self.app = create_app(warden, secure_cookies=False, rate_interval=RATE_INTERVAL)
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        # The lifespan starts the dashboard's reader of the metrics (requests/s over time).
        config = uvicorn.Config(
            self.app, lifespan="on", log_level="warning", access_log=False, server_header=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])),
            name="scrapewarden-demo-dashboard",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()
        self.app.state.dashboard.close()
        store = self.warden.store
        try:
            if store.remove_user(self.user):
                from ..dashboard import audit_view

                audit_view.write(store, time.time(), self.ACTOR, "user.remove", self.user)
        except Exception:  # the store may be closing; a memory store forgets it anyway
            pass
