"""The challenge page: its HTML (pure Python) and its scripts in real Chromium.

The browser tests serve the page from a tiny Starlette app on a loopback port with its own
minimal ``/.sw/verify`` (one hash, leading zero bits, a cookie, a 303), written here from the
shared protocol so these tests stand on their own. ``/protected/...`` behaves like a door: the
page itself with the cookie, the challenge (403) without it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest

from scrapewarden.challenge import assets
from scrapewarden.challenge.page import STRINGS, render, safe_next

# ---- render, pure Python ------------------------------------------------------------------------


def _page(**overrides: Any) -> str:
    args: dict[str, Any] = {"challenge": "abc.def", "bits": 14, "next": "/people/7", "nojs_delay": 5}
    args.update(overrides)
    return render(**args)


def test_english_page_explains_and_carries_the_form_fields() -> None:
    page = _page(reference="R-1")
    assert '<html lang="en">' in page
    assert "check is needed" in page
    assert '<script src="/.sw/challenge.js" defer></script>' in page
    assert 'data-challenge="abc.def"' in page and 'data-bits="14"' in page
    assert 'data-next="/people/7"' in page
    # The JS form and the no-JS form both post to /.sw/verify with the protocol's fields.
    assert page.count('action="/.sw/verify"') == 2
    for name in ("challenge", "nonce", "next", "signals", "nojs"):
        assert f'name="{name}"' in page
    assert '<input type="hidden" name="nojs" value="1">' in page
    assert "<noscript>" in page and "wait about 5 seconds" in page and ">Continue</button>" in page
    assert 'role="status"' in page and 'aria-live="polite"' in page
    assert "<h1>" in page and "<h2>" in page
    assert "R-1" in page
    # No external resources: every src/href is site-relative.
    assert "http://" not in page and "https://" not in page


def test_french_page_and_language_fallback() -> None:
    page = _page(lang="fr-CA")
    assert '<html lang="fr">' in page
    assert STRINGS["fr"]["title"] in page and ">Continuer</button>" in page
    assert "check is needed" not in page
    assert '<html lang="en">' in _page(lang="xx")
    assert '<html lang="en">' in _page(lang="")


def test_next_and_help_url_are_escaped() -> None:
    evil = '/x"><script>alert(1)</script>&y=1'
    page = _page(next=evil, help_url='https://help.example/?a=1&b="<x>"', reference="<r>")
    assert "<script>alert" not in page
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;y=1" in page
    assert 'href="https://help.example/?a=1&amp;b=&quot;&lt;x&gt;&quot;"' in page
    assert "<code>&lt;r&gt;</code>" in page
    assert "<r>" not in page


def test_challenge_value_is_escaped_too() -> None:
    page = _page(challenge='a"b<c>')
    assert 'a"b<c>' not in page and "a&quot;b&lt;c&gt;" in page


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,x", "//evil.example/", " JAVASCRIPT:x", "vbscript:x"]
)
def test_unsafe_help_links_are_dropped(url: str) -> None:
    page = _page(help_url=url)
    assert "href=" not in page
    assert STRINGS["en"]["help_none"].replace("'", "&#x27;") in page


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/a/b?c=d#e", "/a/b?c=d#e"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),
    ],
)
def test_next_stays_on_this_site(asked: str, kept: str) -> None:
    assert safe_next(asked) == kept
    assert f'name="next" value="{kept}"' in _page(next=asked).replace("&amp;", "&")


def test_scripts_are_package_data() -> None:
    assert b"swSolve" in (assets.script("/.sw/worker.js") or b"")
    assert b"/.sw/verify" not in (assets.script("/.sw/worker.js") or b"")
    assert b"cookieEnabled" in (assets.script("/.sw/challenge.js") or b"")
    assert assets.script("/.sw/other.js") is None


# ---- a stand-in site with a minimal verify ---------------------------------------------------------

KEY = b"test key, not secret"
COOKIE = "sw_clearance"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: dict[str, Any]) -> str:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return _b64(body) + "." + _b64(hmac.new(KEY, body, hashlib.sha256).digest())


def _open(token: str) -> dict[str, Any] | None:
    body_b64, _, mac_b64 = token.partition(".")
    try:
        body, mac = _unb64(body_b64), _unb64(mac_b64)
    except ValueError:
        return None
    if not hmac.compare_digest(mac, hmac.new(KEY, body, hashlib.sha256).digest()):
        return None
    payload: dict[str, Any] = json.loads(body)
    return payload


def _zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


@dataclass
class Site:
    base: str
    bits: int = 12
    verified: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    challenges_served: int = 0
    used: set[str] = field(default_factory=set)


def _app(site: Site) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    def challenge_page(request: Request, next_path: str, status: int) -> Response:
        site.challenges_served += 1
        payload = {
            "v": 1,
            "id": secrets.token_hex(16),
            "iat": int(time.time()),
            "d": site.bits,
            "net": "127.0.0.0/24",
            "ua": hashlib.sha256(request.headers.get("user-agent", "").encode()).hexdigest()[:16],
        }
        body = render(
            challenge=_sign(payload),
            bits=site.bits,
            next=next_path,
            nojs_delay=2,
            lang=request.query_params.get("lang", "en"),
        )
        headers = {"Cache-Control": "no-store"}
        if request.query_params.get("sandbox"):
            # An opaque-origin document: the browser refuses it every cookie, as a blocking
            # setting would, without any test hook in the page.
            headers["Content-Security-Policy"] = "sandbox allow-scripts allow-forms"
        return HTMLResponse(body, status_code=status, headers=headers)

    async def challenge(request: Request) -> Response:
        return challenge_page(request, request.query_params.get("next", "/"), 200)

    async def script(request: Request) -> Response:
        data = assets.script(request.url.path)
        if data is None:
            return Response(status_code=404)
        return Response(data, headers=dict(assets.SCRIPT_HEADERS))

    async def verify(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        token = form.get("challenge", "")
        payload = _open(token)
        if payload is None or payload["id"] in site.used:
            site.refused.append("bad or replayed challenge")
            return Response("refused", status_code=403)
        if form.get("nojs") == "1":
            how = "nojs"
        else:
            digest = hashlib.sha256(f"{token}:{form.get('nonce', '')}".encode()).digest()
            if _zero_bits(digest) < payload["d"]:
                site.refused.append("too few zero bits")
                return Response("refused", status_code=403)
            how = "pow"
        site.used.add(payload["id"])
        site.verified.append({"how": how, "form": form})
        response = RedirectResponse(safe_next(form.get("next", "/")), status_code=303)
        response.set_cookie(COOKIE, _sign({"v": 1, "how": how}), httponly=True, samesite="lax", path="/")
        return response

    async def protected(request: Request) -> Response:
        cleared = _open(request.cookies.get(COOKIE, ""))
        if cleared is None:
            asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return challenge_page(request, asked, 403)
        return HTMLResponse(f"<h1 id=landed>{request.url.path} via {cleared['how']}</h1>")

    return Starlette(
        routes=[
            Route("/.sw/challenge", challenge),
            Route("/.sw/challenge.js", script),
            Route("/.sw/worker.js", script),
            Route("/.sw/verify", verify, methods=["POST"]),
            Route("/protected/{name}", protected),
        ]
    )


@pytest.fixture
def site() -> Iterator[Site]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    state = Site(base=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(_app(state), log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from scrapewarden.demo.actors.programs import CHROMIUM_ARGS, browser_unavailable, chromium_executable

    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh user-data dir.
        launched = playwright.chromium.launch(
            executable_path=chromium_executable(), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def insecure_browser() -> Iterator[Any]:
    """Chromium that reaches the loopback site as http://challenge.test: not a secure context."""
    from scrapewarden.demo.actors.programs import CHROMIUM_ARGS, browser_unavailable, chromium_executable

    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Only 127.0.0.1 is ever contacted; the name just makes the origin a non-secure one.
    args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP challenge.test 127.0.0.1"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_executable(), args=args, headless=True)
        try:
            yield launched
        finally:
            launched.close()


LAND_TIMEOUT_MS = 30_000
"""Backstop only: a solve at 16 bits takes well under a second here."""


def _cookie(context: Any) -> dict[str, Any] | None:
    for cookie in context.cookies():
        if cookie["name"] == COOKIE:
            return _open(cookie["value"])
    return None


# ---- in the browser --------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [12, 16])
def test_page_solves_and_lands_on_next_with_the_cookie(site: Site, browser: Any, bits: int) -> None:
    site.bits = bits
    context = browser.new_context()
    page = context.new_page()
    first = page.goto(f"{site.base}/protected/alice?x=1")
    assert first is not None and first.status == 403  # the door answered with the challenge
    # The challenge is served at the asked URL itself, so wait for the page, not for a URL.
    page.wait_for_selector("#landed", timeout=LAND_TIMEOUT_MS)
    assert page.url == f"{site.base}/protected/alice?x=1"
    assert page.text_content("#landed") == "/protected/alice via pow"
    assert _cookie(context) == {"v": 1, "how": "pow"}
    assert len(site.verified) == 1 and site.refused == []
    form = site.verified[0]["form"]
    digest = hashlib.sha256(f"{form['challenge']}:{form['nonce']}".encode()).digest()
    assert _zero_bits(digest) >= bits and form["nonce"].isdigit()
    signals = json.loads(form["signals"])
    # Playwright's Chromium says it is automated; the signals carry that to the engine.
    assert signals["webdriver"] is True
    assert signals["headless_ua"] is True
    assert signals["engine"] == "subtle"  # 127.0.0.1 is a secure context: WebCrypto is there
    assert signals["tries"] >= 1 and isinstance(signals["cores"], int)
    context.close()


def test_without_webcrypto_the_pure_js_engine_solves(site: Site, insecure_browser: Any) -> None:
    site.bits = 14
    context = insecure_browser.new_context()
    page = context.new_page()
    base = site.base.replace("127.0.0.1", "challenge.test")
    page.goto(f"{base}/protected/gus")
    page.wait_for_selector("#landed", timeout=LAND_TIMEOUT_MS)
    assert page.text_content("#landed") == "/protected/gus via pow"
    assert page.evaluate("window.isSecureContext") is False  # same origin as the challenge was
    signals = json.loads(site.verified[0]["form"]["signals"])
    assert signals["subtle"] is False and signals["engine"] == "js"
    context.close()


def test_two_tabs_challenged_at_once_both_land_without_a_loop(site: Site, browser: Any) -> None:
    site.bits = 14
    context = browser.new_context()
    # Both tabs get their challenge before either solves, as when a person opens two links: the
    # page script is held back until both challenge pages are in (else, on a busy machine, the
    # first tab could pass before the second is even opened, and the second not be challenged).
    held: list[Any] = []
    context.route("**/.sw/challenge.js", lambda route: held.append(route))
    tabs = [context.new_page(), context.new_page()]
    for tab, name in zip(tabs, ("a", "b"), strict=True):
        tab.goto(f"{site.base}/protected/{name}", wait_until="commit")
    for _ in range(300):  # bounded: at most ~30 s
        if len(held) == 2:
            break
        tabs[0].wait_for_timeout(100)
    assert len(held) == 2 and site.challenges_served == 2
    for route in held:
        route.continue_()
    for tab, name in zip(tabs, ("a", "b"), strict=True):
        tab.wait_for_selector("#landed", timeout=LAND_TIMEOUT_MS)
        assert tab.text_content("#landed") == f"/protected/{name} via pow"
    assert len(site.verified) == 2 and site.refused == []
    assert site.challenges_served == 2  # no tab was challenged a second time
    context.close()


def test_without_javascript_the_noscript_form_gets_through(site: Site, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{site.base}/protected/carol")
    assert "wait about 2 seconds, then press Continue" in page.inner_text("body")
    page.click("button:has-text('Continue')")
    page.wait_for_selector("#landed", timeout=LAND_TIMEOUT_MS)
    assert page.text_content("#landed") == "/protected/carol via nojs"
    assert _cookie(context) == {"v": 1, "how": "nojs"}
    assert [v["how"] for v in site.verified] == ["nojs"]
    context.close()


def test_blocked_cookies_show_the_message_instead_of_solving(site: Site, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    # The sandboxed page can store no cookie at all (a real refusal by the browser).
    page.goto(f"{site.base}/.sw/challenge?next=/protected/dan&sandbox=1")
    page.wait_for_selector("#sw-cookies", state="visible", timeout=LAND_TIMEOUT_MS)
    assert "does not accept cookies" in (page.text_content("#sw-cookies") or "")
    assert page.is_hidden("#sw-progress-box")
    assert site.verified == [] and site.challenges_served == 1
    context.close()


def test_cookie_enabled_false_shows_the_message(site: Site, browser: Any) -> None:
    context = browser.new_context()
    # The browser setting "block all cookies" makes navigator.cookieEnabled false; Playwright has
    # no switch for it, so the property is overridden before the page's script runs.
    context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'cookieEnabled', {get: () => false});"
    )
    page = context.new_page()
    page.goto(f"{site.base}/.sw/challenge?next=/protected/erin&lang=fr")
    page.wait_for_selector("#sw-cookies", state="visible", timeout=LAND_TIMEOUT_MS)
    assert "refuse les cookies" in (page.text_content("#sw-cookies") or "")
    assert site.verified == []
    context.close()


def test_a_tab_sent_back_again_and_again_stops_and_says_why(site: Site, browser: Any) -> None:
    site.bits = 8
    context = browser.new_context()
    page = context.new_page()
    # The cookie is dropped after every pass, as a cookie-eating extension would do.
    for _ in range(3):
        page.goto(f"{site.base}/protected/fay")
        page.wait_for_selector("#landed", timeout=LAND_TIMEOUT_MS)
        context.clear_cookies()
    page.goto(f"{site.base}/protected/fay")
    page.wait_for_selector("#sw-loop", state="visible", timeout=LAND_TIMEOUT_MS)
    assert len(site.verified) == 3
    context.close()


VECTORS = [
    "",
    "abc",
    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
    "a" * 55,
    "a" * 56,
    "a" * 63,
    "a" * 64,
    "a" * 65,
    "b" * 119,
    "c" * 1000,
    "x" * 200 + ":" + "1234567890",
    "héllo wörld €",
    "emoji \U0001f600 and \u4e2d\u6587",
]


def test_pure_js_sha256_matches_hashlib(site: Site, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.base}/.sw/challenge?next=/&sandbox=1")  # sandboxed: the page itself stays idle
    page.add_script_tag(url="/.sw/worker.js")
    got = page.evaluate("(texts) => texts.map((t) => self.swSha256Hex(t))", VECTORS)
    assert got == [hashlib.sha256(text.encode()).hexdigest() for text in VECTORS]
    # Known answers, not just agreement with hashlib.
    assert got[1] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert got[2] == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    context.close()


def test_both_engines_find_the_first_solution(site: Site, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.base}/protected/solver?sandbox=1")
    page.add_script_tag(url="/.sw/worker.js")
    challenge = _sign({"v": 1, "id": "0" * 32, "iat": 0, "d": 10, "net": "x", "ua": "y"})
    found = page.evaluate(
        """([challenge, bits]) => Promise.all(["js", "subtle"].map((engine) => new Promise(
            (resolve, reject) => self.swSolve(challenge, bits, engine, () => {},
                (nonce, tries, used) => resolve([nonce, tries, used]), reject))))""",
        [challenge, 10],
    )
    first = next(
        n for n in range(1 << 20) if _zero_bits(hashlib.sha256(f"{challenge}:{n}".encode()).digest()) >= 10
    )
    assert found == [[str(first), first + 1, "js"], [str(first), first + 1, "subtle"]]
    context.close()
