"""Both middlewares, on every sample app, over real HTTP on loopback.

Each test runs against Starlette, FastAPI and Django under uvicorn (ASGI), Flask under
werkzeug's server and Django's WSGI app under uvicorn via a2wsgi (WSGI).
"""

from __future__ import annotations

import json

import httpx
import pytest

from scrapewarden.core.decision import Action, Decision
from scrapewarden.core.policy import ActionPolicy, NetworkPolicy, Policy

HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON = {"accept": "application/json"}

RULES = {
    "/users/2": Decision(action=Action.THROTTLE, score=40, retry_after=7),
    "/users/3": Decision(action=Action.BLOCK, score=90),
    "/users/4": Decision(action=Action.CHALLENGE, score=60),
    "/users/5": Decision(action=Action.BLOCK, score=90, enforced=False),
    "/users/6": Decision(action=Action.BLOCK, score=90, decoy=True, record=("profile", "<b>6")),
    "/users/7": Decision(action=Action.BLOCK, score=90, tarpit_seconds=0.05),
    "/search": Decision(action=Action.BLOCK, score=90),
}

TRUSTING_LOOPBACK = Policy(network=NetworkPolicy(trusted_proxies=["127.0.0.1/32"]))


def test_allowed_request_reaches_the_app(site, make_warden):
    warden, engine = make_warden(by_path=RULES)
    with site.serve(warden) as url:
        reply = httpx.get(f"{url}/users/1", headers=JSON)
        home = httpx.get(f"{url}/", headers=HTML)
    assert reply.status_code == 200
    assert reply.json()["name"] == "Bruno Lindqvist"
    assert home.status_code == 200 and "People directory" in home.text
    facts = engine.last("/users/1")
    assert facts.ip == "127.0.0.1"
    assert facts.method == "GET"
    assert facts.header("accept") == "application/json"
    assert facts.malformed == ()


def test_query_string_reaches_the_engine(site, make_warden):
    warden, engine = make_warden()
    with site.serve(warden) as url:
        reply = httpx.get(f"{url}/search", params={"q": "ada"})
    assert reply.status_code == 200
    assert engine.last("/search").query == "q=ada"


def test_throttle_is_429_with_retry_after(site, make_warden):
    warden, _ = make_warden(by_path=RULES)
    with site.serve(warden) as url:
        as_json = httpx.get(f"{url}/users/2", headers=JSON)
        as_html = httpx.get(f"{url}/users/2", headers=HTML)
    assert as_json.status_code == 429
    assert as_json.headers["retry-after"] == "7"
    assert as_json.json()["error"] == "throttle"
    assert as_json.json()["retry_after"] == 7
    assert as_html.status_code == 429
    assert as_html.headers["retry-after"] == "7"
    assert "Please slow down" in as_html.text


def test_block_explains_itself_in_html_and_json(site, make_warden):
    policy = Policy(actions=ActionPolicy(help_url="https://help.example.org/blocked?a=1&b=2"))
    warden, _ = make_warden(policy, by_path=RULES)
    with site.serve(warden) as url:
        page = httpx.get(f"{url}/users/3", headers=HTML)
        api = httpx.get(f"{url}/users/3", headers=JSON)
        nothing = httpx.get(f"{url}/users/3")
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "Access paused" in page.text
    assert 'href="https://help.example.org/blocked?a=1&amp;b=2"' in page.text
    reference = page.headers["x-scrapewarden-reference"]
    assert reference.startswith("sw-") and reference in page.text
    assert "Bruno" not in page.text
    assert api.status_code == 403
    assert api.headers["content-type"] == "application/json"
    body = api.json()
    assert body["error"] == "block"
    assert body["help_url"] == "https://help.example.org/blocked?a=1&b=2"
    assert body["reference"] == api.headers["x-scrapewarden-reference"]
    # No Accept header at all: a script, so JSON.
    assert nothing.status_code == 403 and nothing.json()["error"] == "block"


def test_challenge_says_a_check_is_needed(site, make_warden):
    warden, _ = make_warden(by_path=RULES)
    with site.serve(warden) as url:
        page = httpx.get(f"{url}/users/4", headers=HTML)
    assert page.status_code == 403
    assert "check" in page.text.lower()


def test_observe_mode_passes_through(site, make_warden):
    warden, engine = make_warden(by_path=RULES)
    with site.serve(warden) as url:
        reply = httpx.get(f"{url}/users/5", headers=JSON)
    assert reply.status_code == 200
    assert reply.json()["id"] == "5"
    assert engine.last("/users/5").path == "/users/5"


def test_decoy_is_a_plausible_fake_with_the_id_escaped(site, make_warden):
    warden, _ = make_warden(by_path=RULES)
    with site.serve(warden) as url:
        api = httpx.get(f"{url}/users/6", headers=JSON)
        page = httpx.get(f"{url}/users/6", headers=HTML)
    assert api.status_code == 200
    assert api.json()["id"] == "<b>6"
    assert "<b>" not in api.text
    assert page.status_code == 200
    assert "&lt;b&gt;6" in page.text and "<b>6" not in page.text


def test_tarpit_still_blocks(site, make_warden):
    warden, _ = make_warden(by_path=RULES)
    with site.serve(warden) as url:
        reply = httpx.get(f"{url}/users/7", headers=JSON)
    assert reply.status_code == 403


def test_head_request_gets_status_without_body(site, make_warden):
    warden, _ = make_warden(by_path=RULES)
    with site.serve(warden) as url:
        reply = httpx.head(f"{url}/users/3", headers=HTML)
    assert reply.status_code == 403
    assert reply.content == b""


def test_identity_callable_feeds_the_account(site, make_warden):
    warden, engine = make_warden()
    with site.serve(warden, with_account=True) as url:
        httpx.get(f"{url}/users/1", headers={"x-test-account": "acct-42"})
    assert engine.last("/users/1").account_id == "acct-42"


def test_identity_from_policy_cookies(site, make_warden):
    policy = Policy.model_validate({"identity": {"account_cookie": "account", "session_cookie": "session"}})
    warden, engine = make_warden(policy)
    with site.serve(warden) as url:
        httpx.get(f"{url}/users/1", headers={"cookie": "theme=dark; account=u-7; session=s-99"})
    facts = engine.last("/users/1")
    assert facts.account_id == "u-7"
    assert facts.session_id == "s-99"


def test_engine_failure_fails_open(site, make_warden):
    warden, engine = make_warden(fail=True)
    with site.serve(warden) as url:
        reply = httpx.get(f"{url}/users/1", headers=JSON)
    assert reply.status_code == 200
    assert engine.seen, "the engine must have been asked"


# --- client address and forwarding headers --------------------------------------------------


def test_forwarded_for_from_untrusted_peer_is_ignored(site, make_warden):
    warden, engine = make_warden(by_ip={"203.0.113.9": Decision(action=Action.BLOCK, score=99)})
    with site.serve(warden) as url:
        reply = httpx.get(f"{url}/users/1", headers={"x-forwarded-for": "203.0.113.9"})
    assert reply.status_code == 200
    facts = engine.last("/users/1")
    assert facts.ip == "127.0.0.1"
    assert facts.malformed == ()


def test_forwarded_for_from_trusted_proxy_is_used(site, make_warden):
    warden, engine = make_warden(
        TRUSTING_LOOPBACK, by_ip={"203.0.113.9": Decision(action=Action.BLOCK, score=99)}
    )
    with site.serve(warden) as url:
        blocked = httpx.get(f"{url}/users/1", headers={"x-forwarded-for": "203.0.113.9", **JSON})
        other = httpx.get(f"{url}/users/1", headers={"x-forwarded-for": "198.51.100.1, 127.0.0.1"})
    assert blocked.status_code == 403
    assert other.status_code == 200
    assert engine.last("/users/1").ip == "198.51.100.1"


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted-peer", "trusted-peer"])
def test_hostile_forwarded_for_never_breaks_or_echoes(site, make_warden, trusted):
    policy = TRUSTING_LOOPBACK if trusted else Policy()
    warden, engine = make_warden(policy, by_path=RULES)
    hostile = "<script>alert(1)</script>, 1.2.3.4:99999, [zz::1], ١٢٧.0.0.1"
    with site.serve(warden) as url:
        ok = httpx.get(f"{url}/users/1", headers={"x-forwarded-for": hostile.encode()})
        page = httpx.get(f"{url}/users/3", headers={"x-forwarded-for": "<script>alert(1)</script>", **HTML})
        api = httpx.get(f"{url}/users/3", headers={"x-forwarded-for": "<script>alert(1)</script>", **JSON})
    assert ok.status_code == 200
    assert page.status_code == 403 and api.status_code == 403
    assert "<script>" not in page.text and "<script>" not in api.text
    facts = engine.last("/users/1")
    assert facts.ip == "127.0.0.1"
    if trusted:
        assert "bogus address in forwarding header" in facts.malformed
    else:
        assert facts.malformed == ()


def test_huge_header_is_capped_and_flagged(site, make_warden):
    warden, engine = make_warden(by_path=RULES)
    with site.serve(warden) as url:
        ok = httpx.get(f"{url}/users/1", headers={"x-junk": "A" * 10_000, "user-agent": "<b>" * 3000})
        blocked = httpx.get(f"{url}/users/3", headers={"x-junk": "<script>" * 1300, **HTML})
    assert ok.status_code == 200
    assert blocked.status_code == 403 and "<script>" not in blocked.text
    facts = engine.last("/users/1")
    assert "header too long" in facts.malformed
    assert len(facts.header("x-junk") or "") == 8192


def test_invalid_utf8_in_path_never_gives_500(site, make_warden, send_raw):
    warden, engine = make_warden(by_path=RULES)
    with site.serve(warden) as url:
        raw = send_raw(
            url, b"GET /users/\xff\xfe<x> HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        encoded = httpx.get(f"{url}/users/%FF%FE", headers=JSON)
    status_line = raw.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 ") or raw == b""
    assert b" 500 " not in status_line
    assert b"<x>" not in raw.split(b"\r\n\r\n", 1)[-1] or b"&lt;x&gt;" in raw
    assert encoded.status_code != 500
    facts = engine.last("/users/")
    assert facts.path == "/users/%FF%FE"  # kept as sent: no percent-decoding
    assert "invalid utf-8 in path" in facts.malformed


def test_blocked_invalid_path_is_answered_not_crashed(site, make_warden, send_raw):
    warden, _ = make_warden(by_path={"/users/": Decision(action=Action.BLOCK, score=99)})
    with site.serve(warden) as url:
        raw = send_raw(
            url,
            b"GET /users/%FF/\xc3\x28 HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
        )
    status_line = raw.split(b"\r\n", 1)[0]
    assert b" 500 " not in status_line
    if b" 403 " in status_line:
        body = raw.split(b"\r\n\r\n", 1)[1]
        assert b"Access paused" in body


def test_json_bodies_are_valid_json(site, make_warden):
    warden, _ = make_warden(by_path=RULES)
    with site.serve(warden) as url:
        for path in ("/users/2", "/users/3", "/users/4", "/users/6"):
            reply = httpx.get(f"{url}{path}", headers=JSON)
            assert isinstance(json.loads(reply.content), dict)


def test_body_headers_reach_the_engine(site, make_warden):
    warden, engine = make_warden()
    with site.serve(warden) as url:
        reply = httpx.post(f"{url}/search", json={"q": "ada"})
    assert reply.status_code != 500
    facts = engine.last("/search")
    assert facts.method == "POST"
    assert facts.header("content-type") == "application/json"
    assert facts.header("content-length") == str(len(b'{"q":"ada"}'))
