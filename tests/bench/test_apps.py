"""The three benchmark variants serve the same site, and the two guarded ones really guard."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from scrapewarden.bench import apps
from scrapewarden.doors.asgi import ScrapeWardenMiddleware

BROWSER = {
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-GB,en;q=0.5",
    "accept-encoding": "gzip, deflate",
}


@pytest.mark.parametrize("factory", [apps.make_bare_app, apps.make_scrapewarden_app, apps.make_slowapi_app])
def test_every_variant_serves_the_site(factory) -> None:
    with TestClient(factory()) as client:
        profile = client.get("/users/7", headers=BROWSER)
        assert profile.status_code == 200
        assert "<h1>Hiro Novak</h1>" in profile.text
        assert client.get("/", headers=BROWSER).status_code == 200
        css = client.get("/static/app.css", headers=BROWSER)
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert client.get("/users/not-a-number", headers=BROWSER).status_code == 404


def test_scrapewarden_variant_decides_on_every_request_with_the_bench_policy() -> None:
    app = apps.make_scrapewarden_app()
    assert isinstance(app, ScrapeWardenMiddleware)
    assert app.warden.policy.network.trusted_proxies == ["127.0.0.1/32"]
    with TestClient(app) as client:
        for n in range(1, 4):
            client.get(f"/users/{n}", headers=BROWSER)
    assert app.warden.decisions == 3


def test_scrapewarden_variant_reads_the_policy_named_in_the_environment(tmp_path, monkeypatch) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('mode = "observe"\n', encoding="utf-8")
    monkeypatch.setenv(apps.POLICY_ENV, str(policy))
    assert apps.make_scrapewarden_app().warden.policy.mode == "observe"


def test_slowapi_variant_counts_requests_and_refuses_over_its_limit() -> None:
    # The benchmark's limit is never reached; a tiny one shows the limiter does the work.
    with TestClient(apps.make_slowapi_app("2/minute")) as client:
        statuses = [client.get("/users/1").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_variants_are_built_on_first_access_for_uvicorn() -> None:
    assert "slowapi_app" not in vars(apps) or apps.slowapi_app is not None
    assert apps.bare_app is apps.bare_app
    with pytest.raises(AttributeError):
        apps.no_such_app  # noqa: B018
