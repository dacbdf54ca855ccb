"""What a person (or a program) sees when we do not simply let a request through.

Shared by every door. Bodies are small, readable without JavaScript, and explain what happened
and where to get help. Nothing the client sent is ever shown unescaped: the only request-derived
text that can appear is a decoy record id, which is HTML-escaped or JSON-encoded.
"""

from __future__ import annotations

import hashlib
import html
import json
import secrets
from dataclasses import dataclass

from ..core.decision import Action, Decision


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete HTTP response, independent of any framework."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    reference: str

    @property
    def reason(self) -> str:
        return _REASONS.get(self.status, "")

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers as ASGI wants them (lower-case latin-1 bytes)."""
        return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers]


_REASONS = {200: "OK", 403: "Forbidden", 429: "Too Many Requests"}


def new_reference() -> str:
    """Short id a person can quote to the site's support, and that appears in our logs."""
    return "sw-" + secrets.token_hex(4)


def wants_html(accept: str | None) -> bool:
    """Browsers ask for text/html; API clients and scripts get JSON."""
    return accept is not None and "text/html" in accept.lower()


def _safe_help_url(url: str) -> str:
    """Only http(s), mailto and site-relative links: never ``javascript:`` or the like."""
    url = url.strip()
    if url.lower().startswith(("https://", "http://", "mailto:")):
        return url
    if url.startswith("/") and not url.startswith("//"):
        return url
    return ""


_TEXT = {
    Action.THROTTLE: (
        "Please slow down",
        "We received a lot of requests from your connection in a short time, so we are pausing "
        "it for a moment. This protects the people whose details are on this site from being "
        "copied in bulk.",
        "Please wait {wait} and try again.",
    ),
    Action.CHALLENGE: (
        "A quick check is needed",
        "Your recent activity looks unusual, so we need to check that a person is browsing "
        "before we show more. This protects the people whose details are on this site from "
        "being copied in bulk.",
        "Please try again in a little while. If this keeps happening, contact us and quote the "
        "reference below.",
    ),
    Action.BLOCK: (
        "Access paused",
        "This request was stopped because the activity from your connection looks like "
        "automated copying of personal information, which this site does not allow.",
        "If you are a person and think this is a mistake, contact us and quote the reference "
        "below. We will look into it.",
    ),
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;line-height:1.5;max-width:38rem;margin:3rem auto;padding:0 1rem;
color:#1a1a1a;background:#fff}}
h1{{font-size:1.6rem}}
code{{background:#f0f0f0;padding:.1rem .3rem;border-radius:.2rem}}
a{{color:#0645ad}}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
<p>{what}</p>
<p>{next}</p>
{help}<p>Reference: <code>{reference}</code></p>
</main>
</body>
</html>
"""


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 59) // 60
    return f"{minutes} minutes"


def refusal(decision: Decision, *, accept: str | None, help_url: str = "", retry_after: int = 60) -> Reply:
    """The throttle (429), challenge (403) or block (403) response for ``decision.action``.

    ``retry_after`` is the policy default used when the decision carries none.
    """
    action = decision.action if decision.action in _TEXT else Action.BLOCK
    reference = new_reference()
    title, what, then = _TEXT[action]
    wait = max(1, decision.retry_after or retry_after)
    then = then.format(wait=_wait_text(wait))
    status = 429 if action == Action.THROTTLE else 403
    link = _safe_help_url(help_url)
    headers = [("Cache-Control", "no-store"), ("X-ScrapeWarden-Reference", reference)]
    if action == Action.THROTTLE:
        headers.append(("Retry-After", str(wait)))

    if wants_html(accept):
        help_html = ""
        if link:
            help_html = f'<p><a href="{html.escape(link, quote=True)}">Get help</a></p>\n'
        body = _PAGE.format(
            title=html.escape(title),
            what=html.escape(what),
            next=html.escape(then),
            help=help_html,
            reference=html.escape(reference),
        ).encode("utf-8")
        content_type = "text/html; charset=utf-8"
    else:
        payload: dict[str, object] = {
            "error": action.label,
            "title": title,
            "message": f"{what} {then}",
            "reference": reference,
        }
        if action == Action.THROTTLE:
            payload["retry_after"] = wait
        if link:
            payload["help_url"] = link
        # ensure_ascii keeps the body pure ASCII; "<" cannot break out of anything in JSON,
        # but we escape it too so a browser sniffing the body never sees markup.
        body = json.dumps(payload, ensure_ascii=True).replace("<", "\\u003c").encode("ascii")
        content_type = "application/json"
    headers.append(("Content-Type", content_type))
    headers.append(("Content-Length", str(len(body))))
    return Reply(status=status, headers=headers, body=body, reference=reference)


def unavailable(*, retry_after: int = 5) -> Reply:
    """A 503 page for when part of scrapewarden itself cannot answer (the proxy's decider is
    down or busy). Says plainly that nothing is wrong on the visitor's side and to try again."""
    reference = new_reference()
    body = _PAGE.format(
        title="Please try again in a moment",
        what=html.escape(
            "Your check could not be completed just now because part of this site's protection "
            "is not responding. Nothing is wrong on your side, and nothing was used up."
        ),
        next=html.escape(f"Please wait {_wait_text(retry_after)} and send it again (reload the page)."),
        help="",
        reference=html.escape(reference),
    ).encode("utf-8")
    headers = [
        ("Cache-Control", "no-store"),
        ("Retry-After", str(retry_after)),
        ("X-ScrapeWarden-Reference", reference),
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]
    return Reply(status=503, headers=headers, body=body, reference=reference)


_FIRST = ("Alex", "Sam", "Jordan", "Robin", "Kim", "Charlie", "Morgan", "Jamie", "Taylor", "Noa")
_LAST = ("Miller", "Novak", "Silva", "Berg", "Costa", "Weber", "Larsen", "Moreau", "Rossi", "Kaya")


def decoy(decision: Decision, *, accept: str | None) -> Reply:
    """A plausible but fake record, served to a blocked scraper instead of a 403.

    The fake name is derived from the record id so repeated requests agree with each other;
    it is not a real person's data and says nothing true about the real record.
    """
    kind, record_id = decision.record or ("record", "")
    digest = hashlib.sha256(f"{kind}:{record_id}".encode("utf-8", "replace")).digest()
    name = f"{_FIRST[digest[0] % len(_FIRST)]} {_LAST[digest[1] % len(_LAST)]}"
    reference = new_reference()
    if wants_html(accept):
        body = (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(name)}</title></head><body><main>"
            f"<h1>{html.escape(name)}</h1><p>Member id {html.escape(record_id)}</p>"
            "</main></body></html>\n"
        ).encode()
        content_type = "text/html; charset=utf-8"
    else:
        payload = {"id": record_id, "name": name}
        body = json.dumps(payload, ensure_ascii=True).replace("<", "\\u003c").encode("ascii")
        content_type = "application/json"
    headers = [
        ("Cache-Control", "no-store"),
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
    ]
    return Reply(status=200, headers=headers, body=body, reference=reference)


def reply_for(
    decision: Decision, *, accept: str | None, help_url: str = "", retry_after: int = 60
) -> Reply | None:
    """The response a door must send instead of calling the app, or None to let it through."""
    action = decision.effective
    if action == Action.ALLOW:
        return None
    if action == Action.BLOCK and decision.decoy:
        return decoy(decision, accept=accept)
    return refusal(decision, accept=accept, help_url=help_url, retry_after=retry_after)
