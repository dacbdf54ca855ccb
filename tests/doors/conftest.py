"""Real servers on loopback for the door tests, and a scripted stand-in for the engine.

The engine is replaced at its boundary (``Warden.engine``) by :class:`ScriptedEngine`, a small
real class that answers fixed decisions for chosen paths or client addresses and records the
facts it was given. Everything else (HTTP server, framework, middleware, fact building,
responses) is the real thing.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from scrapewarden.bench.redis_servers import RedisMissing, RedisServer
from scrapewarden.core.bans import BanTable
from scrapewarden.core.decision import Action, Decision
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import Policy
from scrapewarden.doors.asgi import ScrapeWardenMiddleware
from scrapewarden.doors.wsgi import ScrapeWardenWSGIMiddleware
from scrapewarden.warden import Warden

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    # The sample apps live in examples/ at the repository root.
    sys.path.insert(0, str(ROOT))

STARTUP_DEADLINE = 20.0


class ScriptedEngine:
    """Answers fixed decisions by path prefix or client address; records every request."""

    def __init__(
        self,
        by_path: dict[str, Decision] | None = None,
        by_ip: dict[str, Decision] | None = None,
        fail: bool = False,
    ) -> None:
        self.by_path = by_path or {}
        self.by_ip = by_ip or {}
        self.fail = fail
        self.seen: list[RequestFacts] = []
        self.lock = threading.Lock()
        self.bans = BanTable()  # the Warden keeps the engine's ban table in sync with the store

    def decide(self, facts: RequestFacts) -> Decision:
        with self.lock:
            self.seen.append(facts)
        if self.fail:
            raise RuntimeError("engine bug")
        if facts.ip in self.by_ip:
            return self.by_ip[facts.ip]
        for prefix, decision in self.by_path.items():
            if facts.path.startswith(prefix):
                return decision
        return Decision(action=Action.ALLOW, score=0.0)

    def last(self, path_prefix: str = "") -> RequestFacts:
        with self.lock:
            for facts in reversed(self.seen):
                if facts.path.startswith(path_prefix):
                    return facts
        raise AssertionError(f"engine saw no request for {path_prefix!r}")


def scripted_warden(policy: Policy | None = None, **engine: Any) -> tuple[Warden, ScriptedEngine]:
    scripted = ScriptedEngine(**engine)
    warden = Warden(policy or Policy(), engine=scripted, state="memory://")  # type: ignore[arg-type]
    return warden, scripted


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve_asgi(app: Any, *, lifespan: str = "off") -> Iterator[str]:
    """Run ``app`` under a real uvicorn on 127.0.0.1 in a thread; yields the base URL."""
    sock = _free_socket()
    port = sock.getsockname()[1]
    # proxy_headers off: uvicorn would otherwise rewrite the client address from X-Forwarded-For
    # for loopback peers itself, and these tests are about the middleware doing that job.
    config = uvicorn.Config(
        app, lifespan=lifespan, log_level="warning", access_log=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_DEADLINE
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_DEADLINE)
        sock.close()


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Run a WSGI app under werkzeug's real threaded server on 127.0.0.1."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(STARTUP_DEADLINE)
        server.server_close()


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
    import django

    django.setup()


def _asgi_account(scope: Any) -> str | None:
    value = dict(scope["headers"]).get(b"x-test-account")
    return value.decode("latin-1") if value else None


def _wsgi_account(environ: Any) -> str | None:
    value = environ.get("HTTP_X_TEST_ACCOUNT")
    return str(value) if value else None


@dataclass(frozen=True)
class Site:
    """One sample app, how to protect it, and how to serve it."""

    name: str
    build: Callable[[], Any]
    interface: str
    """``asgi``, ``wsgi`` (werkzeug server) or ``a2wsgi`` (WSGI app under uvicorn via a2wsgi)."""

    def protect(self, warden: Warden, *, with_account: bool = False) -> Any:
        site = self.build()
        if self.interface == "asgi":
            return ScrapeWardenMiddleware(
                site, warden=warden, account_id=_asgi_account if with_account else None
            )
        return ScrapeWardenWSGIMiddleware(
            site, warden=warden, account_id=_wsgi_account if with_account else None
        )

    @contextmanager
    def serve(self, warden: Warden, *, with_account: bool = False) -> Iterator[str]:
        app = self.protect(warden, with_account=with_account)
        if self.interface == "asgi":
            with serve_asgi(app) as url:
                yield url
        elif self.interface == "a2wsgi":
            from a2wsgi import WSGIMiddleware

            with serve_asgi(WSGIMiddleware(app)) as url:
                yield url
        else:
            with serve_wsgi(app) as url:
                yield url


def _starlette() -> Any:
    from examples.starlette_app import create_site

    return create_site()


def _fastapi() -> Any:
    from examples.fastapi_app import create_site

    return create_site()


def _flask() -> Any:
    from examples.flask_app import create_site

    return create_site().wsgi_app


def _django_asgi() -> Any:
    _django()
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


def _django_wsgi() -> Any:
    _django()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


SITES = [
    Site("starlette", _starlette, "asgi"),
    Site("fastapi", _fastapi, "asgi"),
    Site("django-asgi", _django_asgi, "asgi"),
    Site("flask", _flask, "wsgi"),
    Site("django-wsgi", _django_wsgi, "a2wsgi"),
]


@pytest.fixture(params=SITES, ids=[site.name for site in SITES])
def site(request: pytest.FixtureRequest) -> Site:
    return request.param  # type: ignore[no-any-return]


def raw_request(url: str, request: bytes) -> bytes:
    """Send bytes as they are (no client library cleans them up); return the whole reply."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def make_warden() -> Callable[..., tuple[Warden, ScriptedEngine]]:
    """``make_warden(policy=None, by_path=..., by_ip=..., fail=False) -> (warden, engine)``."""
    return scripted_warden


@pytest.fixture
def send_raw() -> Callable[[str, bytes], bytes]:
    return raw_request


@pytest.fixture
def run_asgi() -> Callable[..., Any]:
    return serve_asgi


@pytest.fixture
def run_wsgi() -> Callable[..., Any]:
    return serve_wsgi


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own on loopback, stopped after it (skipped where none is
    installed: `.ci/run` installs one)."""
    try:
        server = RedisServer(tmp_path).start()
    except RedisMissing as missing:
        pytest.skip(str(missing))
    try:
        yield server
    finally:
        server.stop()
