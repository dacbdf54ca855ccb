"""A small keep-alive HTTP/1.1 load generator, for machines without wrk.

N asyncio connections over raw sockets, each sending one request at a time until the time is
up or the request cap is reached. It is slower than wrk and shares the machine with the server,
so its numbers are lower in absolute terms; the ratios between targets are what it is for.
Only for our own benchmark server: it understands ``Content-Length`` responses and nothing else.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass, field

from .load_result import LoadResult
from .traffic import Visitor, pick_path

MAX_REQUESTS = 2_000_000
"""Hard cap per run, whatever the duration: bounds memory (one latency per request) and time."""
REQUEST_TIMEOUT = 5.0
CONNECT_RETRY_PAUSE = 0.05
MAX_HEAD = 64 * 1024


@dataclass
class _Tally:
    cap: int
    sent: int = 0
    non_2xx: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


def _heads(visitors: list[Visitor], host: str) -> list[bytes]:
    """Per visitor, everything after the request target: built once, joined per request."""
    heads = []
    for visitor in visitors:
        lines = "".join(f"{name}: {value}\r\n" for name, value in visitor.headers())
        heads.append(f" HTTP/1.1\r\nHost: {host}\r\n{lines}\r\n".encode("latin-1"))
    return heads


def _read_head(head: bytes) -> tuple[int, int, bool]:
    """Status, Content-Length and whether the server will close, from a response head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError("not an HTTP/1.x response")
    status = int(parts[1])
    length = -1
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    if length < 0:
        raise ValueError("response without Content-Length")
    return status, length, close


async def _connection(
    host: str, port: int, heads: list[bytes], deadline: float, tally: _Tally, rng: random.Random
) -> None:
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    try:
        while time.monotonic() < deadline and tally.sent < tally.cap:
            if writer is None:
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT):
                        reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD)
                except (OSError, TimeoutError):
                    tally.errors += 1
                    await asyncio.sleep(CONNECT_RETRY_PAUSE)
                    continue
            assert reader is not None
            request = b"GET " + pick_path(rng).encode() + heads[rng.randrange(len(heads))]
            tally.sent += 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    writer.write(request)
                    status, length, close = _read_head(await reader.readuntil(b"\r\n\r\n"))
                    await reader.readexactly(length)
            except (
                OSError,
                TimeoutError,
                ValueError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
            ):
                tally.errors += 1
                writer.close()
                writer = reader = None
                continue
            tally.latencies.append(time.perf_counter() - started)
            if not 200 <= status < 300:
                tally.non_2xx += 1
            if close:
                writer.close()
                writer = reader = None
    finally:
        if writer is not None:
            writer.close()


async def _run(
    host: str, port: int, visitors: list[Visitor], duration: float, connections: int, cap: int, seed: int
) -> LoadResult:
    heads = _heads(visitors, f"{host}:{port}")
    tally = _Tally(cap=cap)
    started = time.monotonic()
    deadline = started + duration
    tasks = [
        asyncio.create_task(_connection(host, port, heads, deadline, tally, random.Random(seed + n)))
        for n in range(connections)
    ]
    try:
        # Each connection stops at the deadline; one slow request may add REQUEST_TIMEOUT.
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=duration + REQUEST_TIMEOUT + 5.0)
    except TimeoutError:
        pass
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.monotonic() - started
    latencies = sorted(tally.latencies)
    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        non_2xx=tally.non_2xx,
        errors=tally.errors,
        p99_ms=_percentile_ms(latencies, 0.99),
        p50_ms=_percentile_ms(latencies, 0.50),
    )


def _percentile_ms(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted latencies in seconds, in milliseconds."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] * 1000.0


def run_python_load(
    host: str,
    port: int,
    visitors: list[Visitor],
    *,
    duration: float,
    connections: int,
    max_requests: int = MAX_REQUESTS,
    seed: int = 0,
) -> LoadResult:
    """Load ``host:port`` with ``connections`` keep-alive connections for ``duration`` seconds."""
    if not visitors:
        raise ValueError("no visitors to simulate")
    return asyncio.run(_run(host, port, visitors, duration, connections, max_requests, seed))
