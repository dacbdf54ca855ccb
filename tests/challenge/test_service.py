"""Challenges end to end over real HTTP: uvicorn on loopback, the real engine, httpx clients.

The proof-of-work is solved here in Python by brute force, at 8 bits so it takes milliseconds.
The clock is the Warden's (a settable one), so expiry and the no-JS wait need no sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import socket
import threading
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from scrapewarden.core.challenge_signals import REASONS
from scrapewarden.core.clearance import check_solution, leading_zero_bits, new_challenge
from scrapewarden.core.policy import Policy
from scrapewarden.doors.asgi import ScrapeWardenMiddleware
from scrapewarden.state.summary import summarize
from scrapewarden.warden import Warden

SCRIPT = {"user-agent": "python-requests/2.31.0", "accept": "text/html,*/*"}
"""A script that asks for HTML, as a scraper after pages does (plain ``*/*`` gets JSON)."""
FIREFOX = {
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-GB,en;q=0.5",
    "accept-encoding": "gzip, deflate",
}
BITS = 8
T0 = 1_800_000_000.0
BROWSER_REPORT = json.dumps(
    {"webdriver": False, "headless_ua": False, "headless_brand": False, "languages": 2, "screen": [1280, 800]}
)
"""What the challenge page reports from a browser a person uses."""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def site(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = f"the page {scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def serve(app: Any) -> Iterator[str]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def make_policy(**challenge: Any) -> Policy:
    return Policy(
        network={"trusted_proxies": ["127.0.0.1/32"]},
        challenge={"min_bits": BITS, "max_bits": BITS, **challenge},
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def running(clock: Clock) -> Iterator[Any]:
    """Start a protected site with a given policy; yields (url, warden)."""
    stack: list[Any] = []

    def start(policy: Policy) -> tuple[str, Warden]:
        warden = Warden(policy, state="memory://", clock=clock)
        cm = serve(ScrapeWardenMiddleware(site, warden=warden))
        url = cm.__enter__()
        stack.append(cm)
        return url, warden

    yield start
    for cm in stack:
        cm.__exit__(None, None, None)


def challenge_of(page: str) -> str:
    found = re.search(r'name="challenge" value="([^"]+)"', page)
    assert found, "no challenge in the page"
    return found.group(1)


def solve(challenge: str, bits: int = BITS) -> str:
    for n in itertools.count():
        if leading_zero_bits(hashlib.sha256(f"{challenge}:{n}".encode()).digest()) >= bits:
            return str(n)
    raise AssertionError


def payload_of(cookie: str) -> dict[str, Any]:
    body = cookie.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def client(url: str, headers: dict[str, str], ip: str = "198.51.100.7") -> httpx.Client:
    return httpx.Client(base_url=url, headers={**headers, "x-forwarded-for": ip}, follow_redirects=False)


def get_page_and_solve(c: httpx.Client, path: str = "/.sw/challenge?next=/users/1") -> dict[str, str]:
    page = c.get(path)
    token = challenge_of(page.text)
    return {"challenge": token, "nonce": solve(token), "next": "/users/1", "signals": BROWSER_REPORT}


def test_script_is_challenged_and_gets_no_clearance(running: Any) -> None:
    url, _ = running(make_policy())
    with client(url, SCRIPT) as c:
        first = c.get("/users/1")
        again = c.get("/users/1")
    assert first.status_code == 403
    assert "check is needed" in first.text
    assert first.headers["cache-control"] == "no-store"
    assert "set-cookie" not in first.headers
    assert again.status_code == 403 and "sw_clearance" not in c.cookies
    with client(url, {**SCRIPT, "accept": "*/*"}) as plain:
        api = plain.get("/users/1")
    assert api.status_code == 403 and api.json()["error"] == "challenge"
    assert "set-cookie" not in api.headers


def test_solved_challenge_gives_clearance_and_no_more_challenges(running: Any) -> None:
    url, warden = running(make_policy())
    with client(url, SCRIPT) as c:
        page = c.get("/users/1?tab=2")
        assert page.status_code == 403
        token = challenge_of(page.text)
        answer = c.post(
            "/.sw/verify",
            data={
                "challenge": token,
                "nonce": solve(token),
                "next": "/users/1?tab=2",
                "signals": BROWSER_REPORT,
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/users/1?tab=2"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("sw_clearance=")
        for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=86400"):
            assert attribute in cookie
        assert payload_of(c.cookies["sw_clearance"])["how"] == "pow"
        after = [c.get(f"/users/{n}") for n in (1, 2, 3)]
    assert [r.status_code for r in after] == [200, 200, 200]
    assert after[0].text == "the page /users/1"
    assert warden.challenges.stats["passed"] == 1
    # The pass joins the event trail (address pseudonymised), which gives the solve rate.
    warden.store.flush()
    trail = warden.store.events(limit=100)
    (passed,) = [e for e in trail if e.action == "challenge_passed"]
    assert passed.reasons == ["pow"] and passed.ip.startswith("ip~") and "198.51.100.7" not in passed.ip
    assert summarize(trail).solve_rate == 1.0


@pytest.mark.parametrize(
    ("report", "shown"),
    [
        ("", "no_signals"),  # a program that hashes posts the nonce and nothing else
        ("{not json", "no_signals"),
        (json.dumps({**json.loads(BROWSER_REPORT), "webdriver": True}), "webdriver"),
        (json.dumps({**json.loads(BROWSER_REPORT), "headless_ua": True}), "headless"),
    ],
)
def test_a_clearance_earned_with_signs_of_automation_exempts_nothing(
    running: Any, report: str, shown: str
) -> None:
    url, warden = running(make_policy())
    with client(url, SCRIPT) as c:
        form = {**get_page_and_solve(c), "signals": report}
        answer = c.post("/.sw/verify", data=form)
        # The answer is right, so the clearance is given, but it carries what the browser showed.
        assert answer.status_code == 303
        assert payload_of(c.cookies["sw_clearance"])["s"] == shown
        after = c.get("/users/2")
    # The script is still challenged, and the reason says why.
    assert after.status_code == 403
    warden.store.flush()
    last = warden.store.events(limit=100)[-1]
    assert last.path == "/users/2" and REASONS[shown] in last.reasons


def test_a_browser_report_cannot_lower_suspicion(running: Any) -> None:
    """A clean report only spares a client the challenge; blocks still apply."""
    policy = make_policy()
    policy.deny.user_agents.append("python-requests")
    url, _ = running(policy)
    with client(url, SCRIPT) as c:
        # Denied outright: no challenge page to solve, and a clean report changes nothing.
        assert c.get("/users/1").status_code == 403
        form = get_page_and_solve(c)
        assert c.post("/.sw/verify", data=form).status_code == 303
        assert c.get("/users/1").status_code == 403


def test_replayed_solution_is_refused(running: Any) -> None:
    url, _ = running(make_policy())
    with client(url, SCRIPT) as c:
        form = get_page_and_solve(c)
        assert c.post("/.sw/verify", data=form).status_code == 303
        replay = c.post("/.sw/verify", data=form)
    assert replay.status_code == 403
    assert "already used" in replay.text and "set-cookie" not in replay.headers


def test_an_answer_spent_at_one_instance_is_refused_at_another(clock: Clock, tmp_path: Any) -> None:
    """Two instances sharing one state store (and so one key) accept each answer once in all."""
    state = f"sqlite:///{tmp_path}/state.db"
    one, other = (Warden(make_policy(), state=state, clock=clock) for _ in range(2))
    try:
        with serve(ScrapeWardenMiddleware(site, warden=one)) as url_one, serve(
            ScrapeWardenMiddleware(site, warden=other)
        ) as url_other:
            with client(url_one, SCRIPT) as c:
                form = get_page_and_solve(c)
                assert c.post("/.sw/verify", data=form).status_code == 303
            with client(url_other, SCRIPT) as c:
                replay = c.post("/.sw/verify", data=form)
                assert replay.status_code == 403 and "already used" in replay.text
                # A fresh challenge from the second instance is answered there normally.
                assert c.post("/.sw/verify", data=get_page_and_solve(c)).status_code == 303
    finally:
        one.close()
        other.close()


def test_token_from_another_network_or_user_agent_is_refused(running: Any) -> None:
    url, _ = running(make_policy())
    with client(url, SCRIPT) as c:
        form = get_page_and_solve(c)
    # The same solution posted from another /24 or by another program.
    with client(url, SCRIPT, ip="198.51.101.7") as elsewhere:
        assert elsewhere.post("/.sw/verify", data=form).status_code == 403
    with client(url, {**SCRIPT, "user-agent": "curl/8.5.0"}) as other_ua:
        assert other_ua.post("/.sw/verify", data=form).status_code == 403
    # A clearance cookie earned on one network and carried to another is worthless; within the
    # same /24 it holds.
    with client(url, SCRIPT) as c:
        assert c.post("/.sw/verify", data=get_page_and_solve(c)).status_code == 303
        cookie = c.cookies["sw_clearance"]
    jar = {"cookie": f"sw_clearance={cookie}"}
    with client(url, {**SCRIPT, **jar}, ip="198.51.100.200") as same_net:
        assert same_net.get("/users/1").status_code == 200
    with client(url, {**SCRIPT, **jar}, ip="203.0.113.7") as other_net:
        assert other_net.get("/users/1").status_code == 403
    with client(url, {**SCRIPT, **jar, "user-agent": "python-requests/2.32.0"}) as other_ua:
        assert other_ua.get("/users/1").status_code == 403
    with client(url, {**SCRIPT, "cookie": f"sw_clearance={cookie[:-3]}xyz"}) as forged:
        assert forged.get("/users/1").status_code == 403


def test_expired_challenge_and_expired_clearance_are_refused(running: Any, clock: Clock) -> None:
    url, _ = running(make_policy(clearance_hours=1))
    with client(url, SCRIPT) as c:
        form = get_page_and_solve(c)
        clock.now += 601
        late = c.post("/.sw/verify", data=form)
        assert late.status_code == 403 and "took too long" in late.text
        assert c.post("/.sw/verify", data=get_page_and_solve(c)).status_code == 303
        assert c.get("/users/1").status_code == 200
        clock.now += 3600
        assert c.get("/users/1").status_code == 403


def test_under_attack_challenges_a_fresh_visitor_and_lets_a_cleared_one_through(running: Any) -> None:
    url, _ = running(make_policy(under_attack=True))
    with client(url, FIREFOX) as person:
        first = person.get("/")
        assert first.status_code == 403 and "check is needed" in first.text
        assert person.get("/robots.txt").status_code == 200  # allowed paths stay open
        assert person.get("/static/app.css").status_code == 200  # and assets
        assert (
            person.post("/.sw/verify", data=get_page_and_solve(person, "/.sw/challenge?next=/")).status_code
            == 303
        )
        assert person.get("/").status_code == 200
        assert person.get("/users/1").status_code == 200


def test_no_js_path_waits_then_clears(running: Any, clock: Clock) -> None:
    url, _ = running(make_policy(under_attack=True, nojs_delay_seconds=5))
    with client(url, FIREFOX) as person:
        token = challenge_of(person.get("/users/1").text)
        form = {"challenge": token, "nojs": "1", "next": "/users/1"}
        clock.now += 2
        early = person.post("/.sw/verify", data=form)
        assert early.status_code == 403 and "wait" in early.text
        clock.now += 4
        later = person.post("/.sw/verify", data=form)
        assert later.status_code == 303 and later.headers["location"] == "/users/1"
        assert payload_of(person.cookies["sw_clearance"])["how"] == "nojs"
        assert person.get("/users/1").status_code == 200


@pytest.mark.parametrize(
    "target,expected",
    [
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/ok?x=1", "/ok?x=1"),
        ("/.sw/verify", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),
        ("/caf\u00e9", "/"),
    ],
)
def test_next_is_always_a_path_on_this_site(running: Any, target: str, expected: str) -> None:
    url, _ = running(make_policy())
    with client(url, SCRIPT) as c:
        form = {**get_page_and_solve(c), "next": target}
        answer = c.post("/.sw/verify", data=form)
    assert answer.status_code == 303 and answer.headers["location"] == expected


def test_bad_input_to_our_own_paths_never_crashes(running: Any) -> None:
    url, _ = running(make_policy())
    with client(url, SCRIPT) as c:
        assert c.get("/.sw/verify").status_code == 405
        assert c.post("/.sw/challenge").status_code == 405
        assert c.post("/.sw/verify", content=b"x" * 9000).status_code == 413
        assert c.post("/.sw/verify", content=b"\xff\xfe=\x00&&==").status_code == 403
        assert c.post("/.sw/verify", data={"challenge": "a.b", "nonce": "1"}).status_code == 403
        assert c.post("/.sw/verify", data={"challenge": "x" * 5000, "nonce": "9" * 500}).status_code == 403
        page = c.get("/.sw/challenge", params={"next": '"><script>alert(1)</script>'})
        assert page.status_code == 200 and "<script>alert(1)" not in page.text
        worker = c.get("/.sw/worker.js")
        assert worker.status_code == 200 and worker.headers["content-type"].startswith("text/javascript")


def test_server_verification_cost() -> None:
    """Prints the cost of checking a clearance cookie and a proof-of-work answer (no assert)."""
    warden = Warden(make_policy(), state="memory://")
    service = warden.challenges
    ua = FIREFOX["user-agent"]
    cookie = (
        service.verify(
            {
                "nojs": "1",
                "challenge": new_challenge(
                    service.key,
                    now=warden.clock() - 10,
                    ip="198.51.100.7",
                    user_agent=ua,
                    bits=8,
                    rng_bytes=bytes(16),
                ),
            },
            "198.51.100.7",
            ua,
        )
        .headers[1][1]
        .split(";")[0]
        .split("=", 1)[1]
    )
    header = f"theme=dark; sw_clearance={cookie}; lang=en"
    assert service.clearance(header, "198.51.100.7", ua) == "nojs"
    n = 20000
    per_cookie = timeit.timeit(lambda: service.clearance(header, "198.51.100.7", ua), number=n) / n
    token = new_challenge(service.key, now=T0, ip="198.51.100.7", user_agent=ua, bits=14, rng_bytes=bytes(16))
    nonce = solve(token, 14)
    per_solution = (
        timeit.timeit(
            lambda: check_solution(service.key, token, nonce, now=T0 + 1, ip="198.51.100.7", user_agent=ua),
            number=n,
        )
        / n
    )
    print(f"\nclearance cookie check: {per_cookie * 1e6:.1f} µs per request")
    print(f"proof-of-work answer check (14 bits): {per_solution * 1e6:.1f} µs per answer")


def test_checked_clearances_are_cached_but_expiry_is_honoured_after_a_recheck():
    from scrapewarden.challenge.service import CLEARANCE_RECHECK_S, ChallengeService
    from scrapewarden.core.clearance import new_clearance
    from scrapewarden.core.policy import Policy

    now = [1_800_000_000.0]
    service = ChallengeService(Policy(challenge={"key": "k" * 32}), clock=lambda: now[0])
    ua = "Mozilla/5.0 Firefox/128.0"
    token = new_clearance(service.key, now=now[0], ip="198.51.100.7", user_agent=ua, how="pow", hours=0.01)
    header = f"sw_clearance={token}"
    assert service.clearance(header, "198.51.100.7", ua) == "pow"
    assert service.clearance(header, "203.0.113.7", ua) is None  # another network: not from the cache
    now[0] += 30  # the token (36 s) is still valid
    assert service.clearance(header, "198.51.100.7", ua) == "pow"
    now[0] += CLEARANCE_RECHECK_S  # expired, and the cached answer is due for a recheck
    assert service.clearance(header, "198.51.100.7", ua) is None
