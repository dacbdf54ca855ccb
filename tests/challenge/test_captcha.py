"""CAPTCHA challenges: provider answers, the risk bands, owed difficulty, and the whole path.

The provider is a stand-in on loopback (``captcha_standin``) that answers siteverify in each
provider's documented format and serves a widget script that solves at once. The protected site
is the ASGI door on uvicorn, as in ``test_service``; the browser test drives real Chromium.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from captcha_standin import FIELDS, SECRET, SITE_KEY, StandIn, app
from test_service import BITS, FIREFOX, SCRIPT, Clock, challenge_of, client, payload_of, serve, site, solve

from scrapewarden.challenge.captcha import PROVIDERS, CaptchaVerifier, read_answer
from scrapewarden.core.policy import CaptchaPolicy, Policy
from scrapewarden.doors.asgi import ScrapeWardenMiddleware
from scrapewarden.warden import Warden

PROVIDER_NAMES = sorted(PROVIDERS)


@pytest.fixture
def standin() -> Iterator[StandIn]:
    state = StandIn()
    with serve(app(state)) as url:
        state.base = url
        yield state


def captcha_settings(standin: StandIn, provider: str = "turnstile", **extra: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "site_key": SITE_KEY,
        "secret_key": SECRET,
        "verify_url": standin.url(provider, "siteverify"),
        "script_url": standin.url(provider, "api.js"),
        "timeout_seconds": 2.0,
        **extra,
    }


def make_policy(
    standin: StandIn | None, provider: str = "turnstile", *, max_bits: int = BITS, **captcha: Any
) -> Policy:
    """Proof-of-work at 8 bits; a python-requests or headless client scores 60, so with the
    default ``from_score=55`` it is owed a CAPTCHA."""
    settings = captcha_settings(standin, provider, **{"from_score": 55, **captcha}) if standin else {}
    return Policy(
        network={"trusted_proxies": ["127.0.0.1/32"]},
        challenge={"min_bits": BITS, "max_bits": max_bits, "captcha": settings},
    )


@pytest.fixture
def door(standin: StandIn) -> Iterator[Any]:
    """Start a protected site with a given policy; yields a starter returning (url, warden)."""
    stack: list[Any] = []

    def start(policy: Policy, clock: Clock | None = None) -> tuple[str, Warden]:
        warden = Warden(policy, state="memory://", clock=clock or Clock())
        cm = serve(ScrapeWardenMiddleware(site, warden=warden))
        stack.append(cm)
        return cm.__enter__(), warden

    yield start
    for cm in stack:
        cm.__exit__(None, None, None)


def verifier(standin: StandIn, provider: str, **extra: Any) -> CaptchaVerifier:
    return CaptchaVerifier(CaptchaPolicy(**captcha_settings(standin, provider, **extra)))


def captcha_form(page: str, field: str, token: str, next: str = "/users/1") -> dict[str, str]:
    return {"challenge": challenge_of(page), "next": next, "kind": "captcha", field: token}


# -- reading the providers' answers (pure) ----------------------------------------------------------

TURNSTILE_OK = (
    b'{"success": true, "challenge_ts": "2026-11-27T15:14:30.096Z", "hostname": "example.com",'
    b' "error-codes": [], "action": "sw_challenge", "cdata": "", "metadata": {"interactive": false}}'
)
HCAPTCHA_OK = (
    b'{"success": true, "challenge_ts": "2026-11-27T15:14:30Z", "hostname": "example.com", "credit": false}'
)
RECAPTCHA_V2_OK = b'{"success": true, "challenge_ts": "2026-11-27T15:14:30Z", "hostname": "example.com"}'


@pytest.mark.parametrize(
    ("provider", "body"),
    [("turnstile", TURNSTILE_OK), ("hcaptcha", HCAPTCHA_OK), ("recaptcha", RECAPTCHA_V2_OK)],
)
def test_each_providers_success_answer_is_read(provider: str, body: bytes) -> None:
    result = read_answer(PROVIDERS[provider], 200, body)
    assert (
        result.ok
        and result.hostname == "example.com"
        and result.challenge_ts.startswith("2026-11-27T15:14:30")
    )
    assert result.codes == ()


@pytest.mark.parametrize(
    ("body", "outcome", "codes"),
    [
        (
            b'{"success": false, "error-codes": ["invalid-input-response"]}',
            "refused",
            ("invalid-input-response",),
        ),
        (
            b'{"success": false, "error-codes": ["timeout-or-duplicate"]}',
            "refused",
            ("timeout-or-duplicate",),
        ),
        (
            b'{"success": false, "error-codes": ["already-seen-response"]}',
            "refused",
            ("already-seen-response",),
        ),
        (
            b'{"success": false, "error-codes": ["expired-input-response"]}',
            "refused",
            ("expired-input-response",),
        ),
        (b'{"success": false}', "refused", ()),
        (
            b'{"success": false, "error-codes": ["invalid-input-secret"]}',
            "misconfigured",
            ("invalid-input-secret",),
        ),
        (b'{"success": false, "error-codes": ["sitekey-secret-mismatch"]}', "misconfigured", None),
        (b'{"success": false, "error-codes": ["internal-error"]}', "misconfigured", None),
        (b'{"success": false, "error-codes": "not-a-list"}', "refused", ()),
    ],
)
@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_failure_answers_say_whose_fault_it_is(
    provider: str, body: bytes, outcome: str, codes: tuple[str, ...] | None
) -> None:
    result = read_answer(PROVIDERS[provider], 200, body)
    assert result.outcome == outcome and not result.ok
    if codes is not None:
        assert result.codes == codes


@pytest.mark.parametrize(
    ("status", "body", "detail"),
    [
        (200, b"<html>oops</html>", "not JSON"),
        (200, b"", "not JSON"),
        (200, b"[true]", "no true/false 'success'"),
        (200, b'{"success": "true"}', "no true/false 'success'"),
        (200, b'{"success": true, "x": "' + b"a" * 70000 + b'"}', "too large"),
        (500, b'{"success": true}', "HTTP 500"),
        (429, b"", "HTTP 429"),
        (200, b'{"success": true, "score": NaN}', "not a number"),
    ],
)
def test_answers_that_are_not_the_documented_format_count_as_no_answer(
    status: int, body: bytes, detail: str
) -> None:
    result = read_answer(PROVIDERS["turnstile"], status, body)
    assert result.outcome == "unreachable" and detail in result.detail


def test_recaptcha_v3_low_score_and_foreign_action_are_refused() -> None:
    recaptcha = PROVIDERS["recaptcha"]

    def v3(score: float, action: str = "sw_challenge") -> bytes:
        return (
            b'{"success": true, "challenge_ts": "2026-11-27T15:14:30Z", "hostname": "example.com", '
            b'"score": %s, "action": "%s"}' % (str(score).encode(), action.encode())
        )

    assert read_answer(recaptcha, 200, v3(0.9), min_score=0.5).ok
    low = read_answer(recaptcha, 200, v3(0.3), min_score=0.5)
    assert low.outcome == "refused" and "score 0.3 below the minimum 0.5" in low.detail and low.score == 0.3
    assert read_answer(recaptcha, 200, v3(0.3), min_score=0.2).ok
    login = read_answer(recaptcha, 200, v3(0.9, "login"), min_score=0.5)
    assert login.outcome == "refused" and "another action" in login.detail
    # hCaptcha Enterprise scores run the other way (higher is riskier): never compared.
    assert read_answer(PROVIDERS["hcaptcha"], 200, b'{"success": true, "score": 0.1}', min_score=0.5).ok


def test_hostname_is_checked_when_the_policy_lists_hosts() -> None:
    turnstile = PROVIDERS["turnstile"]
    assert read_answer(turnstile, 200, TURNSTILE_OK, hostnames=frozenset({"example.com"})).ok
    other = read_answer(turnstile, 200, TURNSTILE_OK, hostnames=frozenset({"people.example"}))
    assert other.outcome == "refused" and "another host (example.com)" in other.detail


# -- asking the provider over HTTP -----------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_verifier_asks_the_provider_with_secret_token_and_address(standin: StandIn, provider: str) -> None:
    check = verifier(standin, provider)
    token = standin.token()
    result = check.verify(token, "198.51.100.7")
    assert result.ok, result
    assert result.hostname == "127.0.0.1"
    sent = standin.calls[-1]
    assert sent["secret"] == SECRET and sent["response"] == token and sent["remoteip"] == "198.51.100.7"
    assert ("sitekey" in sent) == (provider == "hcaptcha")
    # A token is good once; a made-up one never.
    again = check.verify(token, "198.51.100.7")
    assert again.outcome == "refused"
    assert again.codes == (
        ("already-seen-response",) if provider == "hcaptcha" else ("timeout-or-duplicate",)
    )
    made_up = check.verify("made-up-token", "198.51.100.7")
    assert made_up.outcome == "refused" and made_up.codes == ("invalid-input-response",)
    assert check.verify("", "198.51.100.7").outcome == "missing"
    check.close()


def test_verifier_reports_a_wrong_secret_as_the_sites_fault(standin: StandIn, caplog: Any) -> None:
    check = verifier(standin, "hcaptcha", secret_key="not-the-secret")
    with caplog.at_level(logging.DEBUG, logger="scrapewarden"):
        result = check.verify(standin.token(), "198.51.100.7")
    assert result.outcome == "misconfigured" and result.codes == ("invalid-input-secret",)
    assert "invalid-input-secret" in caplog.text and "not-the-secret" not in caplog.text


def test_verifier_sends_no_address_when_told_not_to(standin: StandIn) -> None:
    check = verifier(standin, "turnstile", send_remote_ip=False)
    assert check.verify(standin.token(), "198.51.100.7").ok
    assert "remoteip" not in standin.calls[-1]


def test_recaptcha_v3_low_score_through_http(standin: StandIn) -> None:
    standin.score = 0.2
    check = verifier(standin, "recaptcha", min_score=0.5)
    result = check.verify(standin.token(), "198.51.100.7")
    assert result.outcome == "refused" and result.score == 0.2
    standin.score = 0.9
    assert check.verify(standin.token(), "198.51.100.7").ok


@pytest.mark.parametrize(("mode", "detail"), [("bad_json", "not JSON"), ("http_500", "HTTP 500")])
def test_verifier_turns_a_broken_provider_into_a_reason(standin: StandIn, mode: str, detail: str) -> None:
    standin.mode = mode
    result = verifier(standin, "turnstile").verify(standin.token(), "198.51.100.7")
    assert result.outcome == "unreachable" and detail in result.detail


def test_verifier_gives_up_on_a_provider_that_does_not_answer_in_time(standin: StandIn) -> None:
    standin.mode = "slow"
    standin.slow_seconds = 2.0
    result = verifier(standin, "turnstile", timeout_seconds=0.2).verify(standin.token(), "198.51.100.7")
    assert result.outcome == "unreachable" and "in time" in result.detail


def test_verifier_reports_an_unreachable_provider(standin: StandIn) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    check = verifier(standin, "turnstile", verify_url=f"http://127.0.0.1:{port}/siteverify")
    result = check.verify("any-token", "198.51.100.7")
    assert result.outcome == "unreachable" and "could not reach" in result.detail


# -- the door: which challenge, and the CAPTCHA answer -----------------------------------------------


def test_score_in_the_captcha_band_gets_the_widget_lower_gets_work_and_no_provider_never(
    door: Any, standin: StandIn
) -> None:
    url, _ = door(make_policy(standin, from_score=55))
    with client(url, SCRIPT) as c:
        page = c.get("/users/1")
    assert page.status_code == 403
    assert 'data-kind="captcha"' in page.text and 'class="cf-turnstile"' in page.text
    assert f'data-sitekey="{SITE_KEY}"' in page.text
    assert f'<script src="{standin.url("turnstile", "api.js")}" defer>' in page.text
    assert 'name="nonce"' not in page.text and 'name="nojs"' not in page.text
    # Ours first, both deferred: the callback exists before the widget can call it.
    assert page.text.index("/.sw/challenge.js") < page.text.index(standin.url("turnstile", "api.js"))
    assert "This check needs JavaScript" in page.text

    url, _ = door(make_policy(standin, from_score=65))
    with client(url, SCRIPT) as c:
        page = c.get("/users/1")
    assert page.status_code == 403 and 'data-bits="8"' in page.text
    assert "cf-turnstile" not in page.text and 'name="nonce"' in page.text

    url, _ = door(make_policy(None))
    with client(url, SCRIPT) as c:
        page = c.get("/users/1")
    assert page.status_code == 403 and 'name="nonce"' in page.text and "data-kind" not in page.text


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_captcha_answer_earns_a_captcha_clearance(door: Any, standin: StandIn, provider: str) -> None:
    url, warden = door(make_policy(standin, provider))
    field = FIELDS[provider][1]
    with client(url, SCRIPT) as c:
        page = c.get("/users/1?tab=2")
        answer = c.post("/.sw/verify", data=captcha_form(page.text, field, standin.token(), "/users/1?tab=2"))
        assert answer.status_code == 303 and answer.headers["location"] == "/users/1?tab=2"
        assert payload_of(c.cookies["sw_clearance"])["how"] == "captcha"
        after = c.get("/users/1")
    assert after.status_code == 200 and after.text == "the page /users/1"
    assert standin.calls[-1]["remoteip"] == "198.51.100.7"
    stats = warden.challenges.stats
    assert stats["issued.captcha"] == 1 and stats["passed.captcha"] == 1 and stats["passed"] == 1


def test_replayed_captcha_challenge_is_refused_and_asks_the_provider_once(
    door: Any, standin: StandIn
) -> None:
    url, warden = door(make_policy(standin))
    with client(url, SCRIPT) as c:
        page = c.get("/users/1").text
        first = c.post("/.sw/verify", data=captcha_form(page, "cf-turnstile-response", standin.token()))
        second = c.post("/.sw/verify", data=captcha_form(page, "cf-turnstile-response", standin.token()))
    assert first.status_code == 303
    assert second.status_code == 403 and "already used" in second.text
    assert len(standin.calls) == 1
    assert warden.challenges.stats["refused.replayed"] == 1 and warden.challenges.stats["failed.captcha"] == 1


def test_captcha_challenge_cannot_be_passed_with_work_or_the_wait(door: Any, standin: StandIn) -> None:
    clock = Clock()
    url, warden = door(make_policy(standin), clock)
    with client(url, SCRIPT) as c:
        token = challenge_of(c.get("/users/1").text)
        work = c.post("/.sw/verify", data={"challenge": token, "nonce": solve(token), "next": "/"})
        clock.now += 60
        wait = c.post("/.sw/verify", data={"challenge": token, "nojs": "1", "next": "/"})
    for refused in (work, wait):
        assert refused.status_code == 403 and "needs JavaScript" in refused.text
        assert "set-cookie" not in refused.headers
    assert warden.challenges.stats["refused.wrong_kind"] == 2
    assert standin.calls == []


def test_refused_and_unreachable_provider_pages_say_which(door: Any, standin: StandIn) -> None:
    url, warden = door(make_policy(standin, timeout_seconds=0.2))
    with client(url, SCRIPT) as c:
        refused = c.post(
            "/.sw/verify", data=captcha_form(c.get("/users/1").text, "cf-turnstile-response", "made-up")
        )
        missing = c.post(
            "/.sw/verify", data=captcha_form(c.get("/users/1").text, "cf-turnstile-response", "")
        )
        standin.mode = "slow"
        slow = c.post(
            "/.sw/verify", data=captcha_form(c.get("/users/1").text, "cf-turnstile-response", standin.token())
        )
    assert refused.status_code == 403 and "did not accept the answer" in refused.text
    assert missing.status_code == 403 and "was not completed" in missing.text
    assert slow.status_code == 503 and "did not answer" in slow.text and "not your fault" in slow.text
    for reply in (refused, missing, slow):
        assert 'href="/.sw/challenge?next=%2Fusers%2F1"' in reply.text and "sw_clearance" not in c.cookies
    stats = warden.challenges.stats
    assert stats["refused.captcha_refused"] == 1 and stats["refused.captcha_missing"] == 1
    assert stats["refused.captcha_unreachable"] == 1 and stats["failed.captcha"] == 3


def test_verify_waiting_on_the_provider_does_not_hold_up_other_requests(door: Any, standin: StandIn) -> None:
    """The provider's answer is awaited in a worker thread: the door keeps serving meanwhile."""
    standin.mode = "slow"
    standin.slow_seconds = 2.0  # the door's own client waits up to 5 s
    url, _ = door(make_policy(standin, timeout_seconds=10))
    done = threading.Event()
    result: dict[str, int] = {}
    with client(url, SCRIPT) as c:
        form = captcha_form(c.get("/users/1").text, "cf-turnstile-response", standin.token())

    def answer() -> None:
        with client(url, SCRIPT) as slow_client:
            result["status"] = slow_client.post("/.sw/verify", data=form).status_code
        done.set()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    for _ in range(500):  # until the provider has the question (bounded: 5 s)
        if standin.calls:
            break
        done.wait(0.01)
    assert standin.calls, "the provider was never asked"
    with client(url, FIREFOX, ip="203.0.113.50") as other:
        assert other.get("/.sw/challenge.js").status_code == 200
        assert other.get("/").status_code == 200
    assert not done.is_set(), "the verify finished before the other requests: nothing was shown"
    thread.join(15)
    assert result["status"] == 303


# -- owed difficulty ---------------------------------------------------------------------------------


def test_direct_get_of_the_page_gets_the_challenge_the_client_was_owed(door: Any, standin: StandIn) -> None:
    clock = Clock()
    url, _ = door(make_policy(standin, from_score=55, max_bits=20), clock)
    api = {**SCRIPT, "accept": "*/*"}
    with client(url, api) as c:
        assert 'data-bits="8"' in c.get("/.sw/challenge?next=/").text  # nothing owed yet: the minimum
        assert c.get("/users/1").json()["error"] == "challenge"  # a JSON answer, no page
        direct = c.get("/.sw/challenge?next=/users/1")
    assert direct.status_code == 200 and 'data-kind="captcha"' in direct.text
    # Another client (user agent) on the same network owes nothing.
    with client(url, {**api, "user-agent": "curl/8.5.0"}) as other:
        assert "cf-turnstile" not in other.get("/.sw/challenge?next=/").text
    clock.now += 601  # a challenge's lifetime later the debt is gone
    with client(url, api) as c:
        assert "cf-turnstile" not in c.get("/.sw/challenge?next=/").text


def test_direct_get_gets_at_least_the_owed_difficulty(door: Any) -> None:
    policy = Policy(network={"trusted_proxies": ["127.0.0.1/32"]}, challenge={"min_bits": 8, "max_bits": 20})
    url, warden = door(policy)
    with client(url, {**SCRIPT, "accept": "*/*"}) as c:
        before = c.get("/.sw/challenge?next=/").text
        c.get("/users/1")  # score 60: 8 + (60-50)/(80-50) * 12 = 12 bits
        after = c.get("/.sw/challenge?next=/").text
    assert 'data-bits="8"' in before and 'data-bits="12"' in after
    assert warden.challenges.owed("198.51.100.7", SCRIPT["user-agent"]) == (12, "pow")


def test_owed_table_is_bounded() -> None:
    from scrapewarden.challenge.service import ChallengeService
    from scrapewarden.core.decision import Action, Decision

    service = ChallengeService(Policy(challenge={"key": "k" * 32}), owed_max=3)
    demand = Decision(Action.CHALLENGE, 60.0, challenge_bits=12)
    for n in range(10):
        service.note_demand(f"198.51.{n}.7", "ua", demand)
    assert len(service._owed) == 3
    assert service.owed("198.51.9.7", "ua") == (12, "pow") and service.owed("198.51.0.7", "ua") is None


# -- counts and secrets ------------------------------------------------------------------------------


def test_solve_counts_per_kind(door: Any, standin: StandIn) -> None:
    clock = Clock()
    url, warden = door(make_policy(standin, from_score=55), clock)
    with client(url, SCRIPT) as bot:
        page = bot.get("/users/1").text
        assert (
            bot.post("/.sw/verify", data=captcha_form(page, "cf-turnstile-response", "nope")).status_code
            == 403
        )
    with client(url, FIREFOX, ip="203.0.113.8") as person:
        token = challenge_of(person.get("/.sw/challenge?next=/").text)
        assert person.post("/.sw/verify", data={"challenge": token, "nonce": solve(token)}).status_code == 303
        token = challenge_of(person.get("/.sw/challenge?next=/").text)
        clock.now += 10
        assert person.post("/.sw/verify", data={"challenge": token, "nojs": "1"}).status_code == 303
    stats = warden.challenges.stats
    assert stats["issued"] == 3 and stats["issued.captcha"] == 1 and stats["issued.pow"] == 2
    assert stats["passed.pow"] == 1 and stats["passed.nojs"] == 1 and stats.get("passed.captcha", 0) == 0
    assert stats["failed.captcha"] == 1 and stats["refused.captcha_refused"] == 1


def test_secret_key_never_reaches_logs_or_pages(door: Any, standin: StandIn, caplog: Any) -> None:
    standin.slow_seconds = 1.0
    url, warden = door(make_policy(standin, timeout_seconds=0.2))
    bodies: list[str] = []
    with caplog.at_level(logging.DEBUG):
        with client(url, SCRIPT) as c:
            for token, mode in (
                ("made-up", "normal"),
                (standin.token(), "slow"),
                (standin.token(), "normal"),
            ):
                standin.mode = mode
                page = c.get("/users/1")
                answer = c.post("/.sw/verify", data=captcha_form(page.text, "cf-turnstile-response", token))
                bodies += [page.text, answer.text, str(answer.headers)]
            bodies.append(c.get("/.sw/challenge?next=/").text)
        # A wrong secret is logged as the site's fault, without the secret that was used.
        misconfigured = verifier(standin, "turnstile", secret_key="wrong-" + SECRET)
        misconfigured.verify(standin.token(), "198.51.100.7")
    assert "invalid-input-secret" in caplog.text and "timed out" in caplog.text  # the logs did run
    assert SECRET not in caplog.text
    assert all(SECRET not in body for body in bodies)
    assert SECRET not in repr(warden.policy) and SECRET not in repr(warden.challenges.captcha)
    # The person's token is not logged either.
    assert all(call["response"] not in caplog.text for call in standin.calls)


def test_a_wsgi_door_checks_captcha_answers_too(standin: StandIn) -> None:
    from test_wsgi import serve_wsgi
    from test_wsgi import site as wsgi_site

    from scrapewarden.doors.wsgi import ScrapeWardenWSGIMiddleware

    warden = Warden(make_policy(standin, "hcaptcha"), state="memory://", clock=Clock())
    with serve_wsgi(ScrapeWardenWSGIMiddleware(wsgi_site, warden=warden)) as url, client(url, SCRIPT) as c:
        page = c.get("/users/1")
        assert 'class="h-captcha"' in page.text
        answer = c.post("/.sw/verify", data=captcha_form(page.text, "h-captcha-response", standin.token()))
        assert answer.status_code == 303 and payload_of(c.cookies["sw_clearance"])["how"] == "captcha"
        assert c.get("/users/1").status_code == 200


def test_missing_httpx_is_a_clear_start_up_error(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)  # what a missing package looks like to import
    policy = make_policy(StandIn(base="http://127.0.0.1:9"))
    with pytest.raises(RuntimeError, match=r"pip install 'scrapewarden\[captcha\]'"):
        Warden(policy, state="memory://")


# -- in a real browser -------------------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[Any]:
    from scrapewarden.demo.actors.programs import CHROMIUM_ARGS, browser_unavailable, chromium_executable

    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_executable(), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


LAND_TIMEOUT_MS = 30_000
"""Backstop only: the stand-in widget answers at once."""


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_browser_passes_the_captcha_and_lands_on_the_page_it_asked_for(
    door: Any, standin: StandIn, browser: Any, provider: str
) -> None:
    """Headless Chromium scores 60 (its user agent says HeadlessChrome): in the CAPTCHA band."""
    url, warden = door(make_policy(standin, provider))
    context = browser.new_context()
    page = context.new_page()
    first = page.goto(f"{url}/users/alice?tab=2")
    assert first is not None and first.status == 403
    # The stand-in widget fills its field and calls back; the page posts, the door asks the
    # stand-in provider, and the 303 brings the browser back with its clearance.
    page.wait_for_function(
        "document.body.innerText.startsWith('the page /users/alice')", timeout=LAND_TIMEOUT_MS
    )
    assert page.url == f"{url}/users/alice?tab=2"
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    assert payload_of(cookies["sw_clearance"])["how"] == "captcha"
    assert standin.scripts_served == 1 and len(standin.calls) == 1
    assert standin.calls[0]["response"] in standin.seen and standin.calls[0]["remoteip"] == "127.0.0.1"
    stats = warden.challenges.stats
    assert stats["issued.captcha"] == 1 and stats["passed.captcha"] == 1 and "failed.captcha" not in stats
    # Cleared: the next pages come straight through.
    again = page.goto(f"{url}/users/bob")
    assert again is not None and again.status == 200
    context.close()


def test_a_token_handed_only_to_the_callback_is_posted_too(door: Any, standin: StandIn, browser: Any) -> None:
    standin.mode = "callback_only"
    url, _ = door(make_policy(standin, "hcaptcha"))
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{url}/users/erin")
    page.wait_for_function(
        "document.body.innerText.startsWith('the page /users/erin')", timeout=LAND_TIMEOUT_MS
    )
    assert standin.calls[0]["response"] in standin.seen
    context.close()


def test_browser_with_a_refused_answer_sees_why_and_no_clearance(
    door: Any, standin: StandIn, browser: Any
) -> None:
    standin.mode = "bad_token"  # the widget hands out a token the provider never issued
    url, _ = door(make_policy(standin))
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{url}/users/carol")
    page.wait_for_selector("text=The check did not pass", timeout=LAND_TIMEOUT_MS)
    assert "did not accept the answer" in page.inner_text("body")
    assert "sw_clearance" not in {c["name"] for c in context.cookies()}
    context.close()


def test_browser_without_javascript_is_told_the_captcha_needs_it(
    door: Any, standin: StandIn, browser: Any
) -> None:
    url, _ = door(make_policy(standin))
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{url}/users/dan")
    assert "This check needs JavaScript" in page.inner_text("body")
    assert standin.scripts_served == 0  # no script runs, so no widget either
    context.close()
