"""Real servers for the proxy tests: a small aiohttp upstream and the proxy, each on its own loop.

The upstream records what reached it (paths, headers, body piece sizes, peer ports) so tests can
check what the proxy forwarded, what it dropped and what it never let through.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from scrapewarden.core.policy import Policy
from scrapewarden.doors.proxy import ProxyServer, ProxySettings
from scrapewarden.doors.proxy_decider import LocalDecider
from scrapewarden.warden import Warden

PIECE = 64 * 1024
DEADLINE = 30.0
"""Seconds a proxy process may take to start or stop."""


@dataclass
class Seen:
    paths: list[str] = field(default_factory=list)
    headers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    peers: set[int] = field(default_factory=set)
    largest_piece: int = 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def upstream_app(seen: Seen) -> web.Application:
    async def record(request: web.Request) -> None:
        seen.paths.append(request.path_qs)
        seen.headers[request.path_qs] = list(request.headers.items())
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            seen.peers.add(peer[1])

    async def echo(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"headers": list(request.headers.items())})

    async def upload(request: web.Request) -> web.Response:
        await record(request)
        digest = hashlib.sha256()
        total = 0
        async for piece in request.content.iter_any():
            seen.largest_piece = max(seen.largest_piece, len(piece))
            digest.update(piece)
            total += len(piece)
        return web.json_response({"total": total, "sha256": digest.hexdigest()})

    async def download(request: web.Request) -> web.StreamResponse:
        await record(request)
        size = int(request.query.get("size", "0"))
        response = web.StreamResponse()
        if request.query.get("length"):
            response.content_length = size
        await response.prepare(request)
        block = b"x" * PIECE
        sent = 0
        while sent < size:
            piece = block[: min(PIECE, size - sent)]
            await response.write(piece)
            sent += len(piece)
        await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(float(request.query.get("s", "1")))
        return web.Response(text="slow done")

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        await record(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    async def anything(request: web.Request) -> web.Response:
        await record(request)
        body = await request.read()
        return web.Response(
            text=f"ok {request.method} {request.path} {len(body)}",
            headers={"X-Hop": "1", "Keep-Alive": "timeout=5", "Connection": "X-Hop"},
        )

    app = web.Application(client_max_size=1 << 30)
    app.router.add_get("/echo", echo)
    app.router.add_post("/upload", upload)
    app.router.add_put("/upload", upload)
    app.router.add_get("/download", download)
    app.router.add_get("/slow", slow)
    app.router.add_get("/ws", websocket)
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def serve_upstream() -> Iterator[tuple[int, Seen]]:
    seen = Seen()
    runner_thread = LoopThread()
    runner = web.AppRunner(upstream_app(seen), access_log=None)
    port = free_port()

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    runner_thread.run(start())
    try:
        yield port, seen
    finally:
        runner_thread.run(runner.cleanup())
        runner_thread.stop()


@contextmanager
def serve_proxy(
    upstream_port: int, *, policy: Policy | None = None, warden: Warden | None = None, **settings: Any
) -> Iterator[tuple[str, ProxyServer]]:
    """The proxy in front of 127.0.0.1:``upstream_port``; observe mode unless told otherwise."""
    warden = warden or Warden(policy or Policy(mode="observe"), state="memory://")
    runner = LoopThread()
    server = ProxyServer(
        ProxySettings(upstream_port=upstream_port, **settings), LocalDecider(warden), runner.loop
    )
    host, port = runner.run(server.start("127.0.0.1", 0))
    try:
        yield f"http://{host}:{port}", server
    finally:
        runner.run(server.shutdown(1.0))
        runner.stop()


def raw_exchange(url: str, payload: bytes, *, timeout: float = 10.0) -> bytes:
    """Send raw bytes to the proxy, read until it closes (or the timeout)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except TimeoutError:
            pass
    return b"".join(chunks)


@contextmanager
def run_proxy(upstream_port: int, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from scrapewarden.cli.main import main; main()",
        "proxy",
        "--upstream",
        f"http://127.0.0.1:{upstream_port}",
        "--listen",
        f"127.0.0.1:{port}",
        "--log-level",
        "info",
        *args,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + DEADLINE
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("proxy did not start") from None
            time.sleep(0.05)
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class OutputReader:
    """Collects the proxy's log lines in the background, so tests can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"no log line with {text!r}: {self.lines}"
            time.sleep(0.05)
