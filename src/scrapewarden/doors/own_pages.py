"""scrapewarden's own pages, for the doors that are servers rather than middleware.

The reverse proxy and the forward-auth service answer the challenge paths themselves, exactly as
the ASGI and WSGI middleware do (:mod:`.asgi`, :mod:`.wsgi`):

- ``GET /.sw/challenge?next=<path>``: the challenge page (200), leading back to ``next``;
- ``GET /.sw/challenge.js`` and ``/.sw/worker.js``: its scripts;
- ``POST /.sw/verify``: the answer; a 303 back to ``next`` with the clearance cookie, or a 403
  page saying what went wrong.

They are never forwarded to the site, which knows nothing about them.

Answers are bound to the client's address and user agent, so both doors must work the address
out exactly as they do when deciding (trusted proxies included): :func:`client_of` is that one
place. ``ChallengeService.verify`` may wait on the network (a CAPTCHA provider's check), so it
runs in a worker thread (:func:`check_answer`) and the event loop keeps serving everyone else
meanwhile.

Who checks an answer can be chosen (``verify``): the proxy always asks its decider, which checks
it in its own process (one process) or in the decider process (``--workers N``), so that every
answer is spent once in one place and reaches the event trail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from ..challenge.service import PAGE_PATH, PREFIX, VERIFY_PATH, ChallengeService, parse_form, static_reply
from ..core.decision import Decision
from ..core.http_facts import facts_from_http
from ..core.policy import Policy
from .asgi import MAX_FORM, OWN_PATHS, plain_reply
from .responses import Reply

log = logging.getLogger("scrapewarden")

__all__ = [
    "MAX_FORM",
    "OWN_PATHS",
    "OWN_PREFIX",
    "Client",
    "Verifier",
    "challenge_page",
    "check_answer",
    "client_of",
    "header",
    "own_reply",
]

Header = tuple[bytes, bytes] | tuple[str, str]

OWN_PREFIX = PREFIX
"""``/.sw/``: a proxy in front of the forward-auth service routes this whole prefix to it."""


@dataclass(frozen=True, slots=True)
class Client:
    """Who is asking, as the challenge binds it."""

    ip: str
    """The client address after the policy's trusted proxies (what the engine sees too)."""
    user_agent: str
    https: bool
    """Whether the person reached the site over https (the cookie is then ``Secure``)."""
    lang: str


def header(headers: Iterable[Header], name: str) -> str | None:
    """The first value of header ``name`` (lower-case), from bytes or str pairs."""
    wanted = name.encode("latin-1")
    for key, value in headers:
        if isinstance(key, bytes):
            if key.lower() == wanted:
                return bytes(value).decode("latin-1")  # type: ignore[arg-type]
        elif key.lower() == name:
            return str(value)
    return None


def client_of(policy: Policy, *, now: float, peer: str, headers: Iterable[Header], scheme: str) -> Client:
    """The client behind ``peer``, read the way the engine reads it."""
    listed = list(headers)
    facts = facts_from_http(
        policy, now=now, peer=peer, method="GET", path="/", query="", headers=listed, scheme=scheme
    )
    return Client(
        ip=facts.ip,
        user_agent=facts.user_agent,
        https=facts.extra.get("scheme") == "https",
        lang=header(listed, "accept-language") or "en",
    )


def challenge_page(challenges: ChallengeService, decision: Decision, *, target: str, client: Client) -> Reply:
    """The challenge page (403) in place of ``target``; passing it leads back there."""
    return challenges.page(decision, target, client.ip, client.user_agent, lang=client.lang)


Verifier = Callable[[Mapping[str, str], Client], Awaitable[Reply]]
"""Checks a posted answer form for a client and gives the reply (303 with clearance, or 403)."""


async def check_answer(challenges: ChallengeService, form: Mapping[str, str], client: Client) -> Reply:
    """``challenges.verify`` for ``client``, in a thread: it may ask a CAPTCHA provider over the
    network, and the caller's event loop must keep serving meanwhile."""
    return await asyncio.to_thread(challenges.verify, form, client.ip, client.user_agent, secure=client.https)


async def own_reply(
    challenges: ChallengeService,
    *,
    method: str,
    path: str,
    query: str,
    body: bytes | None,
    client: Client,
    verify: Verifier | None = None,
) -> Reply:
    """The answer for one of :data:`OWN_PATHS`. ``body`` is None when the form was too large.

    Answers to ``POST /.sw/verify`` go to ``verify`` (default: :func:`check_answer` with
    ``challenges``, in this process). Never raises: a failure is a plain 500, logged.
    """
    try:
        if path == VERIFY_PATH:
            if method != "POST":
                return plain_reply(405, "Use POST.", [("Allow", "POST")])
            if body is None:
                return plain_reply(413, "Form too large.")
            form = parse_form(body)
            if verify is None:
                return await check_answer(challenges, form, client)
            return await verify(form, client)
        if method not in ("GET", "HEAD"):
            return plain_reply(405, "Use GET.", [("Allow", "GET, HEAD")])
        if path == PAGE_PATH:
            target = parse_qs(query).get("next", ["/"])[0]
            return challenges.page(None, target, client.ip, client.user_agent, lang=client.lang)
        return static_reply(path) or plain_reply(404, "Not found.")
    except Exception:
        log.exception("scrapewarden: answering %s failed", "own path")
        return plain_reply(500, "Something went wrong.")
