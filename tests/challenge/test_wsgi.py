"""The challenge flow through the WSGI door, over a real WSGI server (werkzeug) on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from test_service import FIREFOX, SCRIPT, Clock, client, get_page_and_solve, make_policy
from werkzeug.serving import make_server

from scrapewarden.doors.wsgi import ScrapeWardenWSGIMiddleware
from scrapewarden.warden import Warden


def site(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"the page {environ['PATH_INFO']}".encode()]


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def test_wsgi_door_serves_the_challenge_and_honours_clearance() -> None:
    warden = Warden(make_policy(under_attack=True), state="memory://", clock=Clock())
    with serve_wsgi(ScrapeWardenWSGIMiddleware(site, warden=warden)) as url:
        with client(url, FIREFOX) as person:
            first = person.get("/users/1")
            assert first.status_code == 403 and "check is needed" in first.text
            assert person.get("/.sw/challenge.js").status_code == 200
            assert person.get("/.sw/verify").status_code == 405
            answer = person.post("/.sw/verify", data=get_page_and_solve(person))
            assert answer.status_code == 303 and answer.headers["location"] == "/users/1"
            assert "sw_clearance" in person.cookies
            after = person.get("/users/1")
            assert after.status_code == 200 and after.text == "the page /users/1"
        with client(url, SCRIPT, ip="203.0.113.9") as script:
            refused = script.get("/users/1")
            assert refused.status_code == 403 and "sw_clearance" not in script.cookies
            forged = script.post(
                "/.sw/verify", data={"challenge": "x.y", "nonce": "1", "next": "/users/1", "signals": ""}
            )
            assert forged.status_code == 403 and "sw_clearance" not in script.cookies
            too_big = script.post(
                "/.sw/verify",
                content=b"a=" + b"x" * 20_000,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert too_big.status_code == 413
