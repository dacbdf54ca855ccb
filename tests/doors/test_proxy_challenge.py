"""The reverse proxy's challenge path over real loopback sockets: its own pages, the challenge page
for browsers, verification, clearance, binding to the client, and the under-attack switch."""

from __future__ import annotations

import hashlib
import re
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from challenge_helpers import answer, read_page, zero_bits
from proxy_fixtures import OutputReader, raw_exchange, run_proxy, serve_proxy, serve_upstream

from scrapewarden.core.policy import Policy
from scrapewarden.demo.actors.programs import chrome_user_agent
from scrapewarden.warden import Warden

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.5",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-User": "?1",
}
"""Firefox's page headers (sent by python-requests, so in its order: the engine lets it through)."""


def _policy(**network: Any) -> Policy:
    # Low difficulty keeps the Python solver quick; the browser tests use the real range.
    return Policy(challenge={"min_bits": 10, "max_bits": 12}, network=network)


@pytest.fixture
def upstream():
    with serve_upstream() as served:
        yield served


@pytest.fixture
def attacked(upstream) -> Iterator[tuple[str, Any, Warden]]:
    """The proxy in enforce mode, under attack: everyone without clearance is challenged."""
    port, seen = upstream
    warden = Warden(_policy(), state="memory://", under_attack=True)
    with serve_proxy(port, warden=warden) as (url, _):
        yield url, seen, warden


def _no_own_path_reached(seen: Any) -> None:
    assert not [p for p in seen.paths if p.startswith("/.sw/")], seen.paths


def test_own_pages_are_answered_by_the_proxy_and_never_forwarded(attacked):
    url, seen, _ = attacked
    page = requests.get(f"{url}/.sw/challenge?next=/people/7%3Fx%3D1", headers=BROWSER, timeout=10)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert read_page(page.text).next == "/people/7?x=1"
    for script in ("/.sw/challenge.js", "/.sw/worker.js"):
        reply = requests.get(url + script, timeout=10)
        assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/javascript")
        assert b"swSolve" in reply.content or b"cookieEnabled" in reply.content
    head = requests.head(f"{url}/.sw/worker.js", timeout=10)
    assert head.status_code == 200 and head.content == b""
    wrong = requests.get(f"{url}/.sw/verify", timeout=10)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert requests.post(f"{url}/.sw/challenge", data=b"x", timeout=10).status_code == 405
    _no_own_path_reached(seen)
    assert seen.paths == []


def test_open_redirects_are_refused(attacked):
    url, _, _ = attacked
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "/.sw/verify"):
        page = requests.get(f"{url}/.sw/challenge", params={"next": evil}, headers=BROWSER, timeout=10)
        assert read_page(page.text).next == "/"
    # Even a solved challenge with a hand-written next goes to "/" and nowhere else.
    page = read_page(requests.get(f"{url}/.sw/challenge", headers=BROWSER, timeout=10).text)
    form = answer(page, next="//evil.example/")
    form["next"] = "//evil.example/"
    reply = requests.post(f"{url}/.sw/verify", data=form, headers=BROWSER, allow_redirects=False, timeout=10)
    assert reply.status_code == 303 and reply.headers["Location"] == "/"


def test_a_browser_gets_the_page_and_a_script_the_json_refusal(attacked):
    url, seen, _ = attacked
    page = requests.get(f"{url}/people/3?tab=a%20b", headers=BROWSER, timeout=10)
    assert page.status_code == 403
    assert page.headers["Content-Type"].startswith("text/html")
    assert read_page(page.text).next == "/people/3?tab=a%20b"
    assert "Set-Cookie" not in page.headers
    script = requests.get(f"{url}/people/3", timeout=10)  # python-requests' own Accept: */*
    assert script.status_code == 403
    assert script.headers["Content-Type"] == "application/json"
    assert script.json()["error"] == "challenge"
    assert seen.paths == []


def test_solving_earns_clearance_and_lands_on_the_page_asked_for(attacked):
    url, seen, warden = attacked
    with requests.Session() as person:
        person.headers.update(BROWSER)
        first = person.get(f"{url}/people/3?tab=x", timeout=10)
        assert first.status_code == 403
        form = answer(read_page(first.text))
        landed = person.post(f"{url}/.sw/verify", data=form, timeout=10)
        assert [r.status_code for r in landed.history] == [303]
        cookie = landed.history[0].headers["Set-Cookie"]
        assert cookie.startswith("sw_clearance=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # plain http here
        assert landed.status_code == 200 and landed.text == "ok GET /people/3 0"
        # The next page is not challenged again.
        assert person.get(f"{url}/people/4", timeout=10).status_code == 200
    assert seen.paths == ["/people/3?tab=x", "/people/4"]
    assert warden.challenges.stats["passed"] == 1


def test_forged_borrowed_and_replayed_answers_earn_nothing(attacked):
    url, seen, warden = attacked
    page = read_page(requests.get(f"{url}/people/1", headers=BROWSER, timeout=10).text)
    form = answer(page)
    forged = {"sw_clearance": warden.challenges.key.hex()[:20] + "." + "A" * 43}
    assert requests.get(f"{url}/people/1", headers=BROWSER, cookies=forged, timeout=10).status_code == 403
    wrong = dict(form, nonce=_wrong_nonce(page.token, page.bits))
    bad = requests.post(f"{url}/.sw/verify", data=wrong, headers=BROWSER, allow_redirects=False, timeout=10)
    assert bad.status_code == 403 and "Set-Cookie" not in bad.headers
    good = requests.post(f"{url}/.sw/verify", data=form, headers=BROWSER, allow_redirects=False, timeout=10)
    assert good.status_code == 303
    cookie = {"sw_clearance": good.cookies["sw_clearance"]}
    again = requests.post(f"{url}/.sw/verify", data=form, headers=BROWSER, allow_redirects=False, timeout=10)
    assert again.status_code == 403 and "already used" in again.text
    # A cookie earned by one browser is worthless to another program at the same address.
    other = {**BROWSER, "User-Agent": "python-requests/2.32.3"}
    assert requests.get(f"{url}/people/1", headers=other, cookies=cookie, timeout=10).status_code == 403
    assert requests.get(f"{url}/people/1", headers=BROWSER, cookies=cookie, timeout=10).status_code == 200
    assert seen.paths == ["/people/1"]


def test_plain_http_clients_never_obtain_clearance(attacked):
    url, seen, _ = attacked
    with requests.Session() as plain:
        reply = plain.get(f"{url}/people/9", timeout=10)
        assert reply.status_code == 403 and reply.json()["error"] == "challenge"
        assert not plain.cookies
    # Even asking for HTML and posting the page's form back, without the work (or the no-JS
    # wait), earns nothing.
    with httpx.Client(headers={"Accept": "text/html"}, follow_redirects=True, timeout=10) as client:
        reply = client.get(f"{url}/people/9")
        assert reply.status_code == 403
        page = read_page(reply.text)
        for form in (
            {"challenge": page.token, "next": page.next, "nonce": _wrong_nonce(page.token, page.bits)},
            {"challenge": page.token, "next": page.next, "nojs": "1"},
            {"challenge": "forged." + page.token.split(".")[1], "next": page.next, "nonce": "1"},
        ):
            refused = client.post(f"{url}/.sw/verify", data=form)
            assert refused.status_code == 403
        assert "sw_clearance" not in client.cookies
        assert client.get(f"{url}/people/9").status_code == 403
    assert seen.paths == []


def test_the_challenge_binds_to_the_client_behind_a_trusted_proxy(upstream):
    """Behind a trusted proxy the challenge is bound to the forwarded client address, and an
    answer sent from another network (per X-Forwarded-For) is refused."""
    port, seen = upstream
    warden = Warden(_policy(trusted_proxies=["127.0.0.0/8"]), state="memory://", under_attack=True)
    with serve_proxy(port, warden=warden) as (url, _):
        client = {**BROWSER, "X-Forwarded-For": "203.0.113.9"}
        page = read_page(requests.get(f"{url}/people/2", headers=client, timeout=10).text)
        form = answer(page)
        moved = {**BROWSER, "X-Forwarded-For": "198.51.100.1"}
        refused = requests.post(
            f"{url}/.sw/verify", data=form, headers=moved, allow_redirects=False, timeout=10
        )
        assert refused.status_code == 403 and "connection changed" in refused.text
        passed = requests.post(
            f"{url}/.sw/verify", data=form, headers=client, allow_redirects=False, timeout=10
        )
        assert passed.status_code == 303
        cookie = {"sw_clearance": passed.cookies["sw_clearance"]}
        ok = requests.get(f"{url}/people/2", headers=client, cookies=cookie, timeout=10)
        elsewhere = requests.get(f"{url}/people/2", headers=moved, cookies=cookie, timeout=10)
    assert ok.status_code == 200 and elsewhere.status_code == 403
    assert seen.paths == ["/people/2"]


def test_verify_runs_off_the_event_loop(attacked):
    url, _, warden = attacked
    threads: list[str] = []
    original = warden.challenges.verify

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    warden.challenges.verify = recording  # type: ignore[method-assign]
    page = read_page(requests.get(f"{url}/.sw/challenge", headers=BROWSER, timeout=10).text)
    reply = requests.post(
        f"{url}/.sw/verify", data=answer(page), headers=BROWSER, allow_redirects=False, timeout=10
    )
    assert reply.status_code == 303
    # asyncio's default executor names its threads asyncio_N; the proxy's loop runs elsewhere.
    assert len(threads) == 1 and threads[0].startswith("asyncio_")


def test_large_forms_are_refused_and_pipelined_requests_keep_their_order(attacked):
    url, seen, _ = attacked
    host, port = url.removeprefix("http://").split(":")
    big = b"challenge=" + b"a" * 9000
    too_large = raw_exchange(
        url,
        b"POST /.sw/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(big), big),
    )
    assert too_large.startswith(b"HTTP/1.1 413 ")
    chunked = raw_exchange(
        url,
        b"POST /.sw/verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (1000, b"b" * 1000) for _ in range(10))
        + b"0\r\n\r\n",
    )
    assert chunked.startswith(b"HTTP/1.1 413 ")
    # An answer, then a script and a page, in one write: three responses, in order.
    page = read_page(requests.get(f"{url}/.sw/challenge?next=/z", headers=BROWSER, timeout=10).text)
    body = "&".join(f"{k}={v}" for k, v in answer(page).items()).encode()
    ua = BROWSER["User-Agent"].encode()
    pipelined = (
        b"POST /.sw/verify HTTP/1.1\r\nHost: x\r\nUser-Agent: %s\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
        b"GET /.sw/worker.js HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /.sw/challenge HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (ua, len(body), body)
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(pipelined)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", out)
    assert statuses == [b"303", b"200", b"200"]
    assert out.index(b"swSolve") < out.index(b"data-challenge=")
    assert seen.paths == []


def _wrong_nonce(token: str, bits: int) -> str:
    """A well-formed nonce that does not solve the challenge."""
    return next(
        str(n) for n in range(1000) if zero_bits(hashlib.sha256(f"{token}:{n}".encode()).digest()) < bits
    )


# ---- as a process: workers and the --under-attack switch ---------------------------------------


def test_workers_share_one_challenge_key_and_under_attack_takes_effect(upstream, tmp_path):
    """Every exchange on its own connection, so the kernel spreads them over both workers: a
    challenge issued by one worker verifies in the other, and the clearance satisfies the decider.
    Were the key not shared, about half of the twelve answers would be refused."""
    port, seen = upstream
    policy = tmp_path / "policy.toml"
    policy.write_text("[challenge]\nmin_bits = 10\nmax_bits = 12\n")
    closing = {**BROWSER, "Connection": "close"}
    with run_proxy(port, "--policy", str(policy), "--workers", "2", "--under-attack") as (_, url):
        for i in range(12):
            first = requests.get(f"{url}/people/{i}", headers=closing, timeout=10)
            assert first.status_code == 403, first.text[:200]
            verified = requests.post(
                f"{url}/.sw/verify",
                data=answer(read_page(first.text)),
                headers=closing,
                allow_redirects=False,
                timeout=10,
            )
            assert verified.status_code == 303, verified.text[:300]
            assert verified.headers["Location"] == f"/people/{i}"
            cookie = {"sw_clearance": verified.cookies["sw_clearance"]}
            landed = requests.get(f"{url}/people/{i}", headers=closing, cookies=cookie, timeout=10)
            assert landed.status_code == 200 and landed.text == f"ok GET /people/{i} 0"
    assert seen.paths == [f"/people/{i}" for i in range(12)]
    assert len(seen.peers) >= 2  # both workers forwarded (each keeps its own upstream connections)


def test_after_a_reload_with_a_new_key_every_worker_signs_with_it(upstream, tmp_path):
    """The decider sends its key again after SIGHUP: a key named in the new policy is used by
    every worker at once, and cookies signed with the old key stop counting."""
    port, seen = upstream
    policy = tmp_path / "policy.toml"
    policy.write_text("[challenge]\nmin_bits = 10\nmax_bits = 12\n")
    closing = {**BROWSER, "Connection": "close"}

    def clear(url: str, path: str) -> dict[str, str]:
        first = requests.get(url + path, headers=closing, timeout=10)
        verified = requests.post(
            f"{url}/.sw/verify",
            data=answer(read_page(first.text)),
            headers=closing,
            allow_redirects=False,
            timeout=10,
        )
        assert verified.status_code == 303, verified.text[:300]
        return {"sw_clearance": verified.cookies["sw_clearance"]}

    with run_proxy(port, "--policy", str(policy), "--workers", "2", "--under-attack") as (proc, url):
        log = OutputReader(proc)
        old = clear(url, "/people/0")
        assert requests.get(f"{url}/people/0", headers=closing, cookies=old, timeout=10).status_code == 200
        policy.write_text('[challenge]\nmin_bits = 10\nmax_bits = 12\nkey = "a new key from the operator"\n')
        proc.send_signal(signal.SIGHUP)
        log.wait_for("decider: policy reloaded")
        for i in range(1, 9):
            cookie = clear(url, f"/people/{i}")
            landed = requests.get(f"{url}/people/{i}", headers=closing, cookies=cookie, timeout=10)
            assert landed.status_code == 200
        stale = requests.get(f"{url}/people/0", headers=closing, cookies=old, timeout=10)
        assert stale.status_code == 403  # signed with the old key
    assert seen.paths == [f"/people/{i}" for i in range(9)]


def test_without_the_switch_the_same_browser_is_let_through(upstream, tmp_path):
    port, seen = upstream
    with run_proxy(port, "--workers", "1") as (_, url):
        assert requests.get(f"{url}/people/1", headers=BROWSER, timeout=10).status_code == 200
    with run_proxy(port, "--workers", "1", "--under-attack") as (_, url):
        reply = requests.get(f"{url}/people/1", headers=BROWSER, timeout=10)
        assert reply.status_code == 403 and read_page(reply.text).next == "/people/1"
    assert seen.paths == ["/people/1"]


# ---- real Chromium ------------------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[Any]:
    from scrapewarden.demo.actors.programs import browser_unavailable, launch_options

    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A person's browser: navigator.webdriver false (an automated one is re-challenged).
        launched = playwright.chromium.launch(**launch_options(as_person=True))
        try:
            yield launched
        finally:
            launched.close()


LAND_TIMEOUT_MS = 30_000
"""Backstop only: the default difficulty (14 bits) is solved in well under a second here."""


def test_chromium_is_challenged_solves_lands_and_browses_on(upstream, browser):
    port, seen = upstream
    warden = Warden(Policy(), state="memory://", under_attack=True)  # the shipped difficulty
    with serve_proxy(port, warden=warden) as (url, server):
        # A person's browser: headless Chromium with the user agent of desktop Chrome.
        context = browser.new_context(user_agent=chrome_user_agent(browser.version))
        page = context.new_page()
        first = page.goto(f"{url}/people/3?tab=x")
        assert first is not None and first.status == 403
        page.wait_for_function("document.body.innerText.startsWith('ok GET')", timeout=LAND_TIMEOUT_MS)
        assert page.url == f"{url}/people/3?tab=x"
        assert page.inner_text("body") == "ok GET /people/3 0"
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["sw_clearance"]["httpOnly"] is True
        # The next page is not challenged again.
        second = page.goto(f"{url}/people/4")
        assert second is not None and second.status == 200
        assert server.stats.challenged == 1
        context.close()

        # A forged clearance cookie is refused: the page is challenged as if there were none.
        # (Scripts off, so the page does not solve itself and land before the context closes.)
        forged = browser.new_context(user_agent=chrome_user_agent(browser.version), java_script_enabled=False)
        forged.add_cookies([{"name": "sw_clearance", "value": "eyJ2IjoxfQ.AAAA", "url": url}])
        tab = forged.new_page()
        refused = tab.goto(f"{url}/people/5")
        assert refused is not None and refused.status == 403
        assert tab.locator("#sw-challenge").count() == 1
        forged.close()
    assert [p for p in seen.paths if p.startswith("/people/")] == ["/people/3?tab=x", "/people/4"]
    assert warden.challenges.stats["passed"] == 1
