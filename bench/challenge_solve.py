"""Proof-of-work solve time in Chromium, per difficulty and engine (WebCrypto or pure JS).

Serves the solver on a loopback port (a secure context, so WebCrypto is there), starts the real
worker (``/.sw/worker.js``) once per run with a fresh random challenge of the protocol's shape,
and times postMessage -> answer inside the page. Prints the median of RUNS runs per cell, and the
median tries (expected: 2^bits). No asserts: this is a measurement.

    .venv/bin/python bench/challenge_solve.py [--runs 5] [--bits 12,14,16,18]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import platform
import secrets
import socket
import statistics
import threading
import time

import uvicorn
from playwright.sync_api import sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from scrapewarden.challenge import assets
from scrapewarden.demo.actors.programs import CHROMIUM_ARGS, chromium_executable

RUN_IN_WORKER = """([challenge, bits, engine]) => new Promise((resolve, reject) => {
    const worker = new Worker("/.sw/worker.js");
    const start = performance.now();
    worker.onmessage = (event) => {
        if (event.data.type !== "done") return;
        worker.terminate();
        resolve({ms: performance.now() - start, tries: event.data.tries, engine: event.data.engine});
    };
    worker.onerror = (error) => reject(String(error.message));
    worker.postMessage({challenge, bits, engine});
})"""


def challenge(bits: int) -> str:
    """A challenge of the protocol's format and length (the key does not matter here)."""
    payload = {
        "v": 1,
        "id": secrets.token_hex(16),
        "iat": int(time.time()),
        "d": bits,
        "net": "203.0.113.0/24",
        "ua": secrets.token_hex(8),
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    mac = hmac.new(b"bench", body, hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return b64(body) + "." + b64(mac)


def serve() -> tuple[str, uvicorn.Server, threading.Thread]:
    async def page(request: Request) -> Response:
        return HTMLResponse("<!DOCTYPE html><title>bench</title><p>bench</p>")

    async def worker(request: Request) -> Response:
        return Response(assets.script("/.sw/worker.js"), headers=dict(assets.SCRIPT_HEADERS))

    app = Starlette(routes=[Route("/", page), Route("/.sw/worker.js", worker)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/", server, thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bits", default="12,14,16,18")
    args = parser.parse_args()
    difficulties = [int(b) for b in args.bits.split(",")]

    url, server, thread = serve()
    rows: list[tuple[int, str, float, float, int]] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_executable(), args=list(CHROMIUM_ARGS), headless=True
            )
            page = browser.new_page()
            page.goto(url)
            version = browser.version
            cores = page.evaluate("navigator.hardwareConcurrency")
            for bits in difficulties:
                for engine in ("subtle", "js"):
                    times, tries = [], []
                    for _ in range(args.runs):
                        got = page.evaluate(RUN_IN_WORKER, [challenge(bits), bits, engine])
                        assert got["engine"] == engine  # the engine asked for is the one that ran
                        times.append(got["ms"])
                        tries.append(got["tries"])
                    median_ms = statistics.median(times)
                    median_tries = int(statistics.median(tries))
                    rate = sum(tries) / (sum(times) / 1000) if sum(times) else 0.0
                    rows.append((bits, engine, median_ms, rate, median_tries))
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)

    print(f"Chromium {version}, {cores} logical cores ({os.cpu_count()} on host), {platform.machine()}")
    print(f"median of {args.runs} runs per row; each run a fresh challenge; time = worker start to answer")
    print(f"{'bits':>4}  {'engine':<7}{'median ms':>10}{'hashes/s':>12}{'median tries':>14}{'2^bits':>9}")
    for bits, engine, median_ms, rate, median_tries in rows:
        print(f"{bits:>4}  {engine:<7}{median_ms:>10.0f}{rate:>12,.0f}{median_tries:>14,}{2**bits:>9,}")


if __name__ == "__main__":
    main()
