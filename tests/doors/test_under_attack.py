"""The under-attack switch on every door: the middleware keyword, the Warden, the demo site.
(The proxy's and authz's ``--under-attack`` flags are run as processes in test_proxy_challenge.py
and tests/deploy.)"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from challenge_helpers import read_page

from scrapewarden.core.policy import Policy
from scrapewarden.doors.asgi import ScrapeWardenMiddleware
from scrapewarden.doors.wsgi import ScrapeWardenWSGIMiddleware
from scrapewarden.warden import Warden, build_engine, resolve_policy, under_attack_policy

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.5",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-User": "?1",
}


async def asgi_site(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"the site"})


def wsgi_site(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"the site"]


def test_the_policy_copy_is_under_attack_and_the_original_is_not() -> None:
    policy = Policy(mode="enforce")
    attacked = under_attack_policy(policy)
    assert attacked.challenge.under_attack and not policy.challenge.under_attack
    assert attacked.model_dump(exclude={"challenge"}) == policy.model_dump(exclude={"challenge"})
    assert resolve_policy(policy, under_attack=True).challenge.under_attack
    assert resolve_policy(policy) is policy
    assert Warden(policy, state="memory://", under_attack=True).policy.challenge.under_attack
    # The engine is what challenges: one built for the calm policy would silently not.
    with pytest.raises(ValueError, match="under_attack"):
        Warden(policy, state="memory://", engine=build_engine(policy), under_attack=True)


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_the_middleware_keyword_challenges_everyone_without_clearance(
    kind: str, run_asgi: Any, run_wsgi: Any
) -> None:
    make, site, serve = (
        (ScrapeWardenMiddleware, asgi_site, run_asgi)
        if kind == "asgi"
        else (ScrapeWardenWSGIMiddleware, wsgi_site, run_wsgi)
    )
    with serve(make(site, Policy(), state="memory://")) as url:
        calm = requests.get(f"{url}/people/1", headers=BROWSER, timeout=10)
    with serve(make(site, Policy(), state="memory://", under_attack=True)) as url:
        attacked = requests.get(f"{url}/people/1", headers=BROWSER, timeout=10)
        asset = requests.get(f"{url}/static/site.css", headers={**BROWSER, "Accept": "text/css"}, timeout=10)
    assert calm.status_code == 200 and calm.text == "the site"
    assert attacked.status_code == 403 and read_page(attacked.text).next == "/people/1"
    assert asset.status_code == 200  # static assets are never challenged


@pytest.mark.parametrize("make", [ScrapeWardenMiddleware, ScrapeWardenWSGIMiddleware])
def test_a_shared_warden_must_carry_the_switch_itself(make: Any) -> None:
    calm = Warden(Policy(), state="memory://")
    with pytest.raises(ValueError, match="Warden"):
        make(asgi_site, warden=calm, under_attack=True)
    attacked = Warden(Policy(), state="memory://", under_attack=True)
    assert make(asgi_site, warden=attacked, under_attack=True).warden is attacked


def test_the_demo_site_runs_under_attack() -> None:
    from scrapewarden.demo.scenarios import ScenarioConfig, site_process

    config = ScenarioConfig(people=200, under_attack=True)
    with site_process("protected", config) as base:
        reply = requests.get(f"{base}/", headers=BROWSER, timeout=10)
    assert reply.status_code == 403 and read_page(reply.text).next == "/"
