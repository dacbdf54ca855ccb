"""Serving the metrics over HTTP: ``GET /metrics`` on a port of its own, and apps to mount.

What is counted, and how several processes add up, is :mod:`scrapewarden.metrics`; this module
only hands it out: :class:`MetricsServer` (the proxy's and authz's ``--metrics-listen``) and
:func:`metrics_asgi_app` / :func:`metrics_wsgi_app` (exported by the middlewares as
``metrics_app``). docs/metrics.md says why the metrics get a port of their own.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

from .metrics import MULTIPROC_ENV, MULTIPROCESS

METRICS_PATH = "/metrics"


def exposed_registry(multiprocess_dir: str | None = None) -> CollectorRegistry:
    """What ``/metrics`` serves: this process's registry, or the sum of every process's files
    when ``multiprocess_dir`` is given or this process runs in multiprocess mode."""
    path = multiprocess_dir or (os.environ.get(MULTIPROC_ENV) if MULTIPROCESS else None)
    if not path:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return registry


def _networks(allow: Iterable[str] | None) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    return None if allow is None else [ipaddress.ip_network(cidr, strict=False) for cidr in allow]


def _allowed(peer: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] | None) -> bool:
    if networks is None:
        return True
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


LOOPBACK = ("127.0.0.0/8", "::1/128")


def metrics_wsgi_app(
    *, allow: Iterable[str] | None = LOOPBACK, registry: CollectorRegistry | None = None
) -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering the metrics, for a site to mount where it wants (e.g. ``/metrics``).

    ``allow``: networks whose clients may read it (default: loopback only; None: everyone).
    Behind a proxy on the same machine every client looks like loopback: keep the proxy from
    routing this path, or serve it on its own port (:func:`start_metrics_server`)."""
    inner = make_wsgi_app(registry or exposed_registry())
    networks = _networks(allow)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not _allowed(str(environ.get("REMOTE_ADDR", "")), networks):
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Forbidden.\n"]
        if environ.get("REQUEST_METHOD") != "GET":
            start_response("405 Method Not Allowed", [("Allow", "GET"), ("Content-Type", "text/plain")])
            return [b"Method not allowed.\n"]
        result: Iterable[bytes] = inner(environ, start_response)
        return result

    return app


def metrics_asgi_app(
    *, allow: Iterable[str] | None = LOOPBACK, registry: CollectorRegistry | None = None
) -> Callable[..., Any]:
    """An ASGI app answering the metrics; see :func:`metrics_wsgi_app` for ``allow``."""
    from prometheus_client import make_asgi_app

    inner = make_asgi_app(registry or exposed_registry())
    networks = _networks(allow)

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        client = scope.get("client") or ("", 0)
        refusal = None
        if not _allowed(str(client[0]), networks):
            refusal = (403, b"Forbidden.\n")
        elif scope.get("method") != "GET":
            refusal = (405, b"Method not allowed.\n")
        if refusal is None:
            await inner(scope, receive, send)
            return
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(refusal[1])),
        ]
        await send({"type": "http.response.start", "status": refusal[0], "headers": headers})
        await send({"type": "http.response.body", "body": refusal[1]})

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: no noise
        pass


class MetricsServer:
    """``GET /metrics`` on an address of its own, served by a thread (the doors' ``--metrics-listen``).

    A port of its own rather than a path on the public one: the public port's paths belong to
    the site, and the metrics tell whoever reads them which detectors fire, live — an oracle
    for a scraper tuning its disguise. Bind it to loopback or an admin network."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.bound: tuple[str, int] = ("", 0)
        """The address served (the port chosen, when asked for port 0)."""

    def start(self, host: str, port: int) -> tuple[str, int]:
        inner = make_wsgi_app(self.registry or exposed_registry())

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != METRICS_PATH:
                start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
                return [b"Not found; the metrics are at /metrics.\n"]
            if environ.get("REQUEST_METHOD") != "GET":
                start_response("405 Method Not Allowed", [("Allow", "GET")])
                return [b""]
            result: Iterable[bytes] = inner(environ, start_response)
            return result

        server_class = type("_Server", (_ThreadingServer,), {"address_family": _family(host)})
        self._httpd = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="scrapewarden-metrics", daemon=True
        )
        self._thread.start()
        bound: Any = self._httpd.server_address
        self.bound = (str(bound[0]), int(bound[1]))
        return self.bound

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def start_metrics_server(host: str, port: int, *, multiprocess_dir: str | None = None) -> MetricsServer:
    """Serve ``GET /metrics`` on ``host:port`` from a thread; ``stop()`` the result when done."""
    server = MetricsServer(exposed_registry(multiprocess_dir) if multiprocess_dir else None)
    server.start(host, port)
    return server
