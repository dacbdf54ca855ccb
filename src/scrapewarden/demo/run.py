"""Run the demo: serve the people site behind scrapewarden and let people and scrapers at it.

Every client is real HTTP over loopback. Clients connect from 127.0.0.1 and name a simulated
public address in ``X-Forwarded-For``, which the demo policy trusts from 127.0.0.1 only. Every
client loop is bounded by a request count and by the demo's deadline.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import uvicorn

from ..warden import Warden
from .site import DEMO_POLICY, PEOPLE, protected_app

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
CHROME_HEADERS = {
    "sec-ch-ua": '"Chromium";v="130", "Google Chrome";v="130", "Not?A_Brand";v="99"',
    "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Windows"',
    "user-agent": CHROME,
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "sec-fetch-site": "same-origin",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
    "accept-encoding": "gzip, deflate, br",
    "accept-language": "en-GB,en;q=0.9",
}


@dataclass
class ActorResult:
    name: str
    kind: str
    requests: int = 0
    records_exposed: int = 0
    records_before_first_action: int | None = None
    outcomes: set[str] = field(default_factory=set)

    @property
    def outcome(self) -> str:
        for label in ("blocked", "challenged", "throttled"):
            if label in self.outcomes:
                return label
        return "none"

    def saw(self, response: httpx.Response, is_record: bool) -> None:
        self.requests += 1
        if response.status_code == 200:
            if is_record:
                self.records_exposed += 1
            return
        if self.records_before_first_action is None:
            self.records_before_first_action = self.records_exposed
        if response.status_code == 429:
            self.outcomes.add("throttled")
        elif response.status_code == 403:
            challenged = "check is needed" in response.text
            self.outcomes.add("challenged" if challenged else "blocked")

    def as_dict(self) -> dict[str, object]:
        before = self.records_before_first_action
        return {
            "name": self.name,
            "kind": self.kind,
            "requests": self.requests,
            "records_exposed": self.records_exposed,
            "records_before_first_action": self.records_exposed if before is None else before,
            "outcome": self.outcome,
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: object, port: int) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a background thread."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the demo site did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def _client(base: str, ip: str, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=base, headers={**headers, "x-forwarded-for": ip}, timeout=5.0)


def person(
    base: str, name: str, ip: str, rng: random.Random, deadline: float, clicks: int = 20
) -> ActorResult:
    """Someone opening the home page and twenty profiles, with assets and a pause between clicks."""
    result = ActorResult(name, "human")
    sid = f"{rng.getrandbits(64):016x}"
    with _client(base, ip, CHROME_HEADERS) as c:
        c.cookies.set("sid", sid)
        for n in range(clicks + 1):
            if time.monotonic() > deadline:
                break
            path = "/" if n == 0 else f"/users/{rng.randint(1, PEOPLE)}"
            result.saw(c.get(path), is_record=n > 0)
            result.saw(c.get("/static/app.css", headers={"accept": "text/css,*/*;q=0.1"}), is_record=False)
            time.sleep(min(2.0, rng.lognormvariate(-1.5, 0.6)))
    return result


def sequential_scraper(
    base: str, name: str, ip: str, headers: dict[str, str], deadline: float, limit: int = 5000
) -> ActorResult:
    """Walks /users/1, /users/2, ... until told to stop for good (or the deadline)."""
    result = ActorResult(name, "scraper")
    refused_in_a_row = 0
    with _client(base, ip, headers) as c:
        for n in range(1, limit + 1):
            if time.monotonic() > deadline or refused_in_a_row >= 50:
                break
            response = c.get(f"/users/{n}")
            result.saw(response, is_record=True)
            refused_in_a_row = 0 if response.status_code == 200 else refused_in_a_row + 1
    return result


def random_scraper(
    base: str, name: str, ip: str, rng: random.Random, deadline: float, limit: int = 5000
) -> ActorResult:
    """Looks profiles up in random order with a browser's headers, as a careful scraper would."""
    result = ActorResult(name, "scraper")
    refused_in_a_row = 0
    with _client(base, ip, CHROME_HEADERS) as c:
        for _ in range(limit):
            if time.monotonic() > deadline or refused_in_a_row >= 50:
                break
            response = c.get(f"/users/{rng.randint(1, PEOPLE)}")
            result.saw(response, is_record=True)
            refused_in_a_row = 0 if response.status_code == 200 else refused_in_a_row + 1
    return result


PYTHON_REQUESTS = {
    "user-agent": "python-requests/2.32.3",
    "accept-encoding": "gzip, deflate",
    "accept": "*/*",
}


def run_demo(
    duration: float = 30.0,
    seed: int = 7,
    state: str = "memory://",
    progress: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """Start the site, run the clients concurrently for at most ``duration`` seconds, score them."""
    rng = random.Random(seed)
    warden = Warden(DEMO_POLICY, state=state)
    results: list[ActorResult] = []
    lock = threading.Lock()
    with serve(protected_app(warden), free_port()) as base:
        deadline = time.monotonic() + duration
        jobs: list[tuple[str, Callable[[], ActorResult]]] = []
        for i in range(5):
            prng = random.Random(rng.getrandbits(32))
            ip = f"81.2.{69 + i}.{10 + i}"
            jobs.append(
                (
                    f"person {i + 1}",
                    lambda n=f"person {i + 1}", ip=ip, r=prng: person(base, n, ip, r, deadline),
                )
            )
        jobs.append(
            (
                "scraper: python-requests, sequential ids",
                lambda: sequential_scraper(
                    base,
                    "scraper: python-requests, sequential ids",
                    "203.0.113.10",
                    PYTHON_REQUESTS,
                    deadline,
                ),
            )
        )
        jobs.append(
            (
                "scraper: spoofed Chrome, sequential ids",
                lambda: sequential_scraper(
                    base,
                    "scraper: spoofed Chrome, sequential ids",
                    "203.0.113.11",
                    {"user-agent": CHROME, "accept": "*/*"},
                    deadline,
                ),
            )
        )
        jobs.append(
            (
                "scraper: browser headers, random ids",
                lambda: random_scraper(
                    base,
                    "scraper: browser headers, random ids",
                    "198.51.100.12",
                    random.Random(rng.getrandbits(32)),
                    deadline,
                ),
            )
        )

        def work(name: str, job: Callable[[], ActorResult]) -> None:
            result = job()
            with lock:
                results.append(result)
            if progress:
                progress(f"{name}: done ({result.requests} requests)")

        threads = [threading.Thread(target=work, args=job, daemon=True) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=duration + 30)
    humans = [r for r in results if r.kind == "human"]
    return {
        "site": "demo people directory (interim demo; the full scenario suite is issue 3)",
        "records_total": PEOPLE,
        "actors": [r.as_dict() for r in sorted(results, key=lambda r: (r.kind, r.name))],
        "humans": {
            "sessions": len(humans),
            "challenged": sum("challenged" in r.outcomes for r in humans),
            "throttled": sum("throttled" in r.outcomes for r in humans),
            "blocked": sum("blocked" in r.outcomes for r in humans),
        },
        "decisions": {a.label: n for a, n in warden.actions.items()},
    }
