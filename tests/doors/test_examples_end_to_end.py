"""The sample apps with the real engine and the real examples/policy.toml, over loopback HTTP."""

from __future__ import annotations

import importlib
from pathlib import Path

import httpx
import pytest

from scrapewarden.core.decision import Action
from scrapewarden.core.policy import Policy
from scrapewarden.policy_file import load_policy
from scrapewarden.warden import Warden

POLICY_FILE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"

BROWSER = {
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-GB,en;q=0.5",
    "accept-encoding": "gzip, deflate",
    "sec-fetch-dest": "document",
    "sec-fetch-mode": "navigate",
    "sec-fetch-site": "same-origin",
    "sec-fetch-user": "?1",
}


def test_example_policy_protects_profiles_and_search():
    policy = load_policy(POLICY_FILE)
    patterns = {(p.pattern, p.kind, p.query_param) for p in policy.protected}
    assert ("/users/{id}", "profile", "") in patterns
    assert ("/search", "profile", "q") in patterns


def test_browser_is_served_and_trap_visitor_is_refused(site):
    warden = Warden(POLICY_FILE, state="memory://")
    with site.serve(warden) as url:
        home = httpx.get(f"{url}/", headers=BROWSER)
        person = httpx.get(f"{url}/users/1", headers=BROWSER)
        trap = httpx.get(f"{url}/.env", headers=BROWSER)
    assert home.status_code == 200 and "People directory" in home.text
    assert person.status_code == 200 and "Bruno Lindqvist" in person.text
    assert trap.status_code == 403
    assert trap.headers["content-type"].startswith("text/html")
    assert "mailto:support@example.org" in trap.text


def test_bot_user_agent_is_not_served_the_profile(site):
    warden = Warden(POLICY_FILE, state="memory://")
    with site.serve(warden) as url:
        reply = httpx.get(f"{url}/users/1", headers={"user-agent": "python-requests/2.31", "accept": "*/*"})
    assert reply.status_code in (403, 429)
    assert "Bruno" not in reply.text
    assert reply.json()["reference"].startswith("sw-")


def _deny_documentation_net(**network: object) -> Policy:
    return Policy.model_validate({"network": network, "deny": {"networks": ["203.0.113.0/24"]}})


def test_trusted_proxy_forwarded_address_is_judged(site):
    warden = Warden(_deny_documentation_net(trusted_proxies=["127.0.0.1/32"]), state="memory://")
    with site.serve(warden) as url:
        denied = httpx.get(f"{url}/users/1", headers={**BROWSER, "x-forwarded-for": "203.0.113.9"})
        fine = httpx.get(f"{url}/users/1", headers={**BROWSER, "x-forwarded-for": "198.51.100.1"})
    assert denied.status_code == 403
    assert fine.status_code == 200


def test_untrusted_forwarded_address_is_ignored(site):
    warden = Warden(_deny_documentation_net(), state="memory://")
    with site.serve(warden) as url:
        reply = httpx.get(f"{url}/users/1", headers={**BROWSER, "x-forwarded-for": "203.0.113.9"})
    assert reply.status_code == 200


def test_observe_mode_lets_everything_through(site):
    policy = Policy.model_validate({"mode": "observe", "deny": {"networks": ["127.0.0.0/8"]}})
    warden = Warden(policy, state="memory://")
    with site.serve(warden) as url:
        reply = httpx.get(f"{url}/users/1", headers=BROWSER)
    assert reply.status_code == 200
    assert warden.actions[Action.BLOCK] == 1  # decided, recorded, not enforced


@pytest.mark.parametrize(
    ("module", "attribute", "interface"),
    [
        ("examples.starlette_app", "app", "asgi"),
        ("examples.fastapi_app", "app", "asgi"),
        ("examples.flask_app", "app", "wsgi"),
        ("examples.django_app.asgi", "application", "asgi"),
        ("examples.django_app.wsgi", "application", "wsgi"),
    ],
)
def test_example_modules_as_shipped(module, attribute, interface, run_asgi, run_wsgi):
    """The modules exactly as a user runs them (``uvicorn examples.starlette_app:app`` ...)."""
    app = getattr(importlib.import_module(module), attribute)
    serve = run_asgi if interface == "asgi" else run_wsgi
    with serve(app) as url:
        person = httpx.get(f"{url}/users/2", headers=BROWSER)
        trap = httpx.get(f"{url}/wp-login.php", headers={**BROWSER, "accept": "application/json"})
    assert person.status_code == 200 and "Chiara Moreau" in person.text
    assert trap.status_code == 403 and trap.json()["error"] == "block"


def _walk(client: httpx.Client, ids: list[int]) -> tuple[int, int | None]:
    """Request each profile until the first refusal; (profiles received, status of the refusal)."""
    received = 0
    for n in ids:
        reply = client.get(f"/users/{n}")
        if reply.status_code != 200:
            return received, reply.status_code
        received += 1
    return received, None


def test_person_browses_freely_and_walkers_are_refused_within_budget(site):
    """The issue's yardstick, on every framework: twenty profiles by a person are never refused;
    a script walking /users/1..5000 from one address is refused, in order or not."""
    import random

    rng = random.Random(4)
    warden = Warden(POLICY_FILE, state="memory://")
    with site.serve(warden) as url, httpx.Client(base_url=url, headers=BROWSER, timeout=10) as person:
        person.cookies.set("session", "person-1")
        received, refusal = _walk(person, rng.sample(range(1, 5001), 20))
    assert (received, refusal) == (20, None)

    warden = Warden(POLICY_FILE, state="memory://")
    with site.serve(warden) as url, httpx.Client(base_url=url, headers=BROWSER, timeout=10) as script:
        received, refusal = _walk(script, list(range(1, 5001)))
    assert refusal in (403, 429) and received < 50

    budget = load_policy(POLICY_FILE).limits.per_ip.profiles_per_hour
    warden = Warden(POLICY_FILE, state="memory://")
    with site.serve(warden) as url, httpx.Client(base_url=url, headers=BROWSER, timeout=10) as script:
        received, refusal = _walk(script, rng.sample(range(1, 5001), 5000))
    assert refusal in (403, 429) and received <= budget
