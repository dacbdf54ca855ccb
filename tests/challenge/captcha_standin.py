"""A stand-in CAPTCHA provider on loopback: siteverify in each provider's documented format, and a
widget script that "solves" at once.

Served over real HTTP (Starlette on uvicorn, port 0) at ``/<provider>/siteverify`` and
``/<provider>/api.js`` for provider in turnstile, hcaptcha, recaptcha. The widget script does what
the real ones do as far as the page can tell: it finds the provider's ``<div class=...>``, puts a
fresh one-time token into a hidden input named after the provider's response field inside it, and
calls the widget's ``data-callback``. Every token it hands out is remembered; siteverify accepts a
remembered token once, for the right secret, and answers like the provider would otherwise.

Knobs on :class:`StandIn`: ``mode`` ("normal", "slow", "bad_json", "http_500"; for the widget,
"bad_token" hands out tokens siteverify does not know and "callback_only" passes the token to
the callback without filling the field), ``score`` (the reCAPTCHA v3 score to report; None for
a v2 key), ``hostname``, ``action``.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FIELDS = {
    "turnstile": ("cf-turnstile", "cf-turnstile-response"),
    "hcaptcha": ("h-captcha", "h-captcha-response"),
    "recaptcha": ("g-recaptcha", "g-recaptcha-response"),
}
"""provider -> (widget class, response field), as each provider documents them."""

SECRET = "standin-secret-0123456789abcdef"
SITE_KEY = "standin-site-key"
STAMP = "2026-11-27T15:00:00Z"

# The widget script, with the provider's class and field filled in. The token is made by the
# server (one per script load) so that siteverify can tell tokens it issued from made-up ones.
WIDGET_JS = """(function () {
  var token = %(token)s;
  function draw() {
    var boxes = document.querySelectorAll(".%(klass)s");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      if (%(fill)s) {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = "%(field)s";
        input.value = token;
        box.appendChild(input);
      }
      var label = document.createElement("p");
      label.id = "standin-widget";
      label.textContent = "stand-in %(provider)s widget for " + box.getAttribute("data-sitekey");
      box.appendChild(label);
      var done = box.getAttribute("data-callback");
      if (done && typeof window[done] === "function") window[done](token);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
"""


@dataclass
class StandIn:
    base: str = ""
    mode: str = "normal"
    score: float | None = None
    hostname: str = "127.0.0.1"
    action: str = "sw_challenge"
    slow_seconds: float = 3.0
    issued: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    calls: list[dict[str, str]] = field(default_factory=list)
    """Every siteverify form received, in order (the test checks what was sent)."""
    scripts_served: int = 0

    def url(self, provider: str, what: str) -> str:
        return f"{self.base}/{provider}/{what}"

    def token(self) -> str:
        """A token as the widget would hand out (for tests that post forms themselves)."""
        token = "standin-" + secrets.token_urlsafe(24)
        self.issued.add(token)
        return token

    def answer(self, provider: str, form: dict[str, str]) -> dict[str, Any]:
        """The provider's documented answer for this form."""
        duplicate = {"hcaptcha": "already-seen-response"}.get(provider, "timeout-or-duplicate")
        codes: list[str] = []
        if not form.get("secret"):
            codes.append("missing-input-secret")
        elif form["secret"] != SECRET:
            codes.append("invalid-input-secret")
        token = form.get("response", "")
        if not token:
            codes.append("missing-input-response")
        elif token in self.seen:
            codes.append(duplicate)
        elif token not in self.issued:
            codes.append("invalid-input-response")
        if codes:
            return {"success": False, "error-codes": codes}
        self.seen.add(token)
        if provider == "turnstile":
            return {
                "success": True,
                "challenge_ts": STAMP,
                "hostname": self.hostname,
                "error-codes": [],
                "action": self.action,
                "cdata": "",
                "metadata": {"interactive": False},
            }
        if provider == "hcaptcha":
            return {"success": True, "challenge_ts": STAMP, "hostname": self.hostname, "credit": False}
        found: dict[str, Any] = {"success": True, "challenge_ts": STAMP, "hostname": self.hostname}
        if self.score is not None:  # a v3 key
            found.update(score=self.score, action=self.action)
        return found


def app(state: StandIn) -> Starlette:
    async def siteverify(request: Request) -> Response:
        provider = request.path_params["provider"]
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        state.calls.append(form)
        if state.mode == "slow":
            await asyncio.sleep(state.slow_seconds)
        if state.mode == "bad_json":
            return Response("<html>upstream error</html>", media_type="text/html")
        if state.mode == "http_500":
            return JSONResponse({"success": False}, status_code=500)
        return JSONResponse(state.answer(provider, form))

    async def script(request: Request) -> Response:
        provider = request.path_params["provider"]
        klass, name = FIELDS[provider]
        state.scripts_served += 1
        token = state.token() if state.mode != "bad_token" else "made-up-" + secrets.token_hex(8)
        fill = "false" if state.mode == "callback_only" else "true"
        body = WIDGET_JS % {
            "token": f'"{token}"',
            "klass": klass,
            "field": name,
            "provider": provider,
            "fill": fill,
        }
        return Response(body, media_type="text/javascript", headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/{provider}/siteverify", siteverify, methods=["POST"]),
            Route("/{provider}/api.js", script),
        ]
    )
