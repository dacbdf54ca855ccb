"""One uvicorn server in its own process group, started and always stopped.

Every benchmark target runs in the same configuration: one worker, uvloop, httptools, no
access log, log level warning, and ``--no-proxy-headers`` so uvicorn leaves the client address
alone and each middleware reads ``X-Forwarded-For`` itself (that work is part of what we measure).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

HOST = "127.0.0.1"
STARTUP_DEADLINE = 30.0
STOP_GRACE = 5.0


def free_port(host: str = HOST) -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def uvicorn_command(app: str, port: int, host: str = HOST) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--no-proxy-headers",
    ]


def _ready(host: str, port: int) -> bool:
    """Does the server answer HTTP? Any status will do: scrapewarden may well refuse this bare
    probe (no user agent), and that too means the app is up."""
    connection = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        connection.request("GET", "/static/app.css")
        return connection.getresponse().status > 0
    except OSError:
        return False
    finally:
        connection.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left after a grace period."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, STOP_GRACE)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    # The leader may be gone while a child it forked lives on in the group: make sure.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def serve_command(
    command: list[str],
    port: int,
    *,
    name: str,
    env: Mapping[str, str] | None = None,
    host: str = HOST,
    log_files: tuple[Path, ...] = (),
) -> Iterator[int]:
    """Run ``command`` (a server that will listen on ``host:port``) in its own process group;
    yield the port once it answers HTTP, and stop the whole group on the way out, whatever happens.

    ``log_files`` are files the server writes its errors to (nginx's error log): their tails are
    shown with the output when it fails to start.
    """
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + STARTUP_DEADLINE
            while not _ready(host, port):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode("utf-8", "replace")[-3000:]
                    for path in log_files:
                        with suppress(OSError):
                            output += f"\n--- {path.name}:\n" + path.read_text("utf-8", "replace")[-3000:]
                    state = "exited" if process.poll() is not None else "did not answer in time"
                    raise RuntimeError(f"server for {name} {state}; its output:\n{output}")
                time.sleep(0.1)
            yield port
        finally:
            stop(process)


@contextmanager
def serve(app: str, *, env: Mapping[str, str] | None = None, host: str = HOST) -> Iterator[int]:
    """Serve ``app`` (``module:attribute``) on a free loopback port; yield the port once it answers."""
    port = free_port(host)
    with serve_command(uvicorn_command(app, port, host), port, name=app, env=env, host=host) as ready:
        yield ready
