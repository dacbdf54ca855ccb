"""The challenge service: issues challenges, checks answers, hands out and reads clearance.

The adapter around :mod:`scrapewarden.core.clearance`: it owns the signing key, the clock, the
randomness and the memory of spent challenges, and it speaks in :class:`Reply` objects every
door can send.

Key: ``policy.challenge.key`` when set, else one generated on first use and kept in the state
store (setting ``challenge.key``), so every instance sharing a store signs and checks with the
same key. A key made while the store could not answer is this instance's own until
:meth:`ChallengeService.converge_key` finds the shared one; challenges and cookies signed with
the replaced key are still accepted here for as long as a clearance lives (see
:mod:`..state.shared_keys`).

Single use: a spent challenge id is marked in the state store (``spend_once``) for as long as a
challenge lives (10 minutes), so no instance sharing the store accepts the same answer twice; a
bounded in-memory table answers repeats without a store round trip. If the store cannot be
reached, the in-memory table alone decides (this instance still refuses replays; another one
might accept a single replay, bound to the same network and user agent — never a failed request).

Two kinds of challenge (``Decision.challenge_kind``): proof-of-work (with its no-JavaScript
wait), or a third-party CAPTCHA when the policy names a provider and the risk score is in the
CAPTCHA band (:mod:`.captcha`). A CAPTCHA answer is checked with the provider over the network,
so :meth:`ChallengeService.verify` may block for up to the provider timeout: async doors run it
in a worker thread.

Owed difficulty: ``GET /.sw/challenge`` asked for directly must not be the easy way in. The
service remembers, per client network and user agent, the challenge its latest challenged
request was owed (difficulty and kind; bounded table, entries live as long as a challenge), and
a direct request gets at least that.

Every checked answer is told to ``on_outcome`` (the Warden records it in the event trail, which
gives the solve rate), with what the browser showed while solving (:mod:`..core.challenge_signals`).
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.challenge_signals import read_report
from ..core.clearance import (
    CHALLENGE_SECONDS,
    ChallengeKind,
    Clearance,
    Verdict,
    check_captcha_challenge,
    check_solution,
    check_wait,
    new_challenge,
    new_clearance,
    read_clearance,
    ua_hash,
)
from ..core.decision import Action, Decision
from ..core.facts import RequestFacts
from ..core.fingerprint import network_of
from ..core.policy import Policy
from ..doors.responses import Reply, new_reference
from ..state.base import StateStore
from ..state.shared_keys import CHALLENGE_KEY, StoredKey, shared_key, stored_key

if TYPE_CHECKING:
    from .captcha import CaptchaVerifier, Widget

log = logging.getLogger("scrapewarden")

COOKIE = "sw_clearance"
PREFIX = "/.sw/"
PAGE_PATH = "/.sw/challenge"
VERIFY_PATH = "/.sw/verify"
SCRIPT_PATHS = ("/.sw/challenge.js", "/.sw/worker.js")
MAX_FORM_BYTES = 8192
MAX_NEXT = 2000
SPENT_MAX = 200_000
"""Spent challenge ids remembered at most; the oldest go first (they expire anyway)."""
OWED_MAX = 100_000
"""Clients (network + user agent) whose owed challenge is remembered at most; the oldest go first."""

_FAILED = {
    "malformed": "The answer was incomplete.",
    "forged": "The check was not one we issued.",
    "expired": "The check took too long or was already used.",
    "network": "Your connection changed while the check was running.",
    "user_agent": "Your browser changed while the check was running.",
    "too_few_bits": "The answer was not right.",
    "too_early": "Please wait the few seconds the page asks for before continuing.",
    "replayed": "The check was already used.",
    "wrong_kind": "This check has to be completed with the puzzle shown on the page, which needs JavaScript.",
    "captcha_missing": "The puzzle on the page was not completed.",
    "captcha_refused": "The checking service did not accept the answer. Please try the check again.",
    "captcha_unreachable": (
        "The checking service did not answer, so the check could not be confirmed. "
        "This is not your fault: please try again in a moment."
    ),
    "captcha_misconfigured": (
        "The check could not be confirmed because of a problem on this site's side. "
        "Please try again later, or contact the site."
    ),
    "captcha_off": "This check is no longer in use. Please try again.",
}
_NOT_THEIR_FAULT = frozenset({"captcha_unreachable", "captcha_misconfigured"})
"""Failures answered with 503 (the site or its provider failed) rather than 403."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One checked answer: passed or not, how (pow, nojs, captcha), and the details — the
    refusal reason, or the automation signs the browser showed while passing."""

    ts: float
    ip: str
    user_agent: str
    passed: bool
    how: str
    detail: tuple[str, ...] = ()


def safe_next(target: str) -> str:
    """A path on this site to send the visitor back to; "/" for anything else.

    Never another site (``//evil.example``, ``/\\evil.example``), never our own ``/.sw/`` pages
    (a loop), never anything that could break a header (controls, non-ASCII).
    """
    if (
        not target
        or len(target) > MAX_NEXT
        or not target.startswith("/")
        or target.startswith(("//", "/\\", PREFIX))
        or not target.isascii()
        or any(ch < " " or ch == "\x7f" or ch == "\\" for ch in target)
    ):
        return "/"
    return target


def cookie_value(headers: Iterable[tuple[str, str]], name: str = COOKIE) -> str:
    """Value of cookie ``name`` across all Cookie headers (lower-case names); "" when absent."""
    for key, value in headers:
        if key != "cookie" or name not in value:
            continue
        for pair in value.split(";"):
            found_name, eq, found = pair.partition("=")
            if eq and found_name.strip() == name:
                return found.strip().strip('"')
    return ""


CLEARANCE_RECHECK_S = 60.0
"""How long a checked clearance cookie is trusted before its signature and expiry are checked again."""
CLEARANCE_CACHE_MAX = 50_000


class ChallengeService:
    """One per Warden. Thread-safe enough: the spent table is touched under the GIL only."""

    def __init__(
        self,
        policy: Policy,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.time,
        *,
        spent_max: int = SPENT_MAX,
        owed_max: int = OWED_MAX,
    ) -> None:
        self.policy = policy
        self.clock = clock
        stored = self._key(policy, store)
        self.key = stored.value
        self._key_provisional = stored.provisional
        self._old_keys: list[tuple[bytes, float]] = []
        """Keys replaced by :meth:`converge_key`, each with the time until which it still checks."""
        self.store = store
        self._v4 = policy.network.ipv4_network_prefix
        self._v6 = policy.network.ipv6_network_prefix
        self._spent: OrderedDict[str, float] = OrderedDict()
        self._spent_max = spent_max
        # (network, user agent hash) -> (bits, kind, expires): what the client's latest challenged
        # request was owed, so a direct GET of the page cannot pick an easier challenge.
        self._owed: OrderedDict[tuple[str, str], tuple[int, ChallengeKind, float]] = OrderedDict()
        self._owed_max = owed_max
        # verify() runs in worker threads for async doors; the tables below are read-modify-write.
        self._lock = threading.Lock()
        self.captcha = _verifier(policy)
        """The CAPTCHA provider's verifier, or None when the policy names no provider."""
        # Checked clearances: (token, ip, user agent) -> (how, checked at). A cleared person sends
        # the cookie with every request; checking its signature each time cost ~12 µs on the hot
        # path. Entries are re-checked after CLEARANCE_RECHECK_S, so an expiry is honoured within
        # that; the table is bounded.
        self._cleared: dict[tuple[str, str, str], tuple[Clearance, float]] = {}
        self.stats: dict[str, int] = {"issued": 0, "passed": 0}
        """Counts for the solve rate: challenges ``issued`` and ``passed``, per kind
        (``issued.pow``, ``issued.captcha``; ``passed.pow``, ``passed.nojs``, ``passed.captcha``;
        ``failed.<kind>``), and ``refused.<reason>``."""
        self.on_outcome: Callable[[Outcome], None] | None = None
        """Told of every answer checked (the Warden records it in the event trail)."""

    def _count(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self.stats[key] = self.stats.get(key, 0) + 1

    @staticmethod
    def _key(policy: Policy, store: StateStore | None) -> StoredKey:
        if policy.challenge.key:
            return StoredKey(policy.challenge.key.encode("utf-8"))
        if store is not None:
            return stored_key(store, CHALLENGE_KEY, "challenge key")
        return StoredKey(secrets.token_bytes(32))

    def converge_key(self) -> bool:
        """If the key was made while the store could not answer, take the shared one once it
        can; True when the key changed. The replaced key still checks challenges and cookies
        for as long as a clearance lives, so nobody who passed a challenge here meanwhile is
        asked again (other instances never knew that key: there, they are)."""
        if not self._key_provisional or self.store is None:
            return False
        shared = shared_key(self.store, CHALLENGE_KEY, self.key)
        if shared is None:
            return False
        self._key_provisional = False
        if shared == self.key:
            return False
        until = self.clock() + self.policy.challenge.clearance_hours * 3600.0 + CHALLENGE_SECONDS
        self._old_keys = [(self.key, until)]
        self.key = shared
        log.warning("scrapewarden: challenge key now the one shared through the state store")
        return True

    def _previous_keys(self, now: float) -> list[bytes]:
        if self._old_keys and self._old_keys[0][1] <= now:
            self._old_keys = [(key, until) for key, until in self._old_keys if until > now]
        return [key for key, _ in self._old_keys]

    # -- clearance -------------------------------------------------------------------------------

    def clearance(self, cookie_header: str | None, ip: str, ua: str) -> str | None:
        """How this client earned clearance ("pow", "nojs", "captcha"), or None."""
        token = cookie_value((("cookie", cookie_header),)) if cookie_header else ""
        found = self._clearance(token, ip, ua)
        return found.how if found else None

    def clearance_for(self, facts: RequestFacts) -> Clearance | None:
        """This request's clearance, read from its facts (all Cookie headers, the resolved
        client address), with what the browser showed while earning it."""
        return self._clearance(cookie_value(facts.headers), facts.ip, facts.user_agent)

    def _clearance(self, token: str, ip: str, ua: str) -> Clearance | None:
        if not token:
            return None
        now = self.clock()
        key = (token, ip, ua)
        known = self._cleared.get(key)
        if known is not None and now - known[1] < CLEARANCE_RECHECK_S:
            return known[0]
        found = read_clearance(
            self.key, token, now=now, ip=ip, user_agent=ua, v4_prefix=self._v4, v6_prefix=self._v6
        )
        if found is None and self._old_keys:
            for old in self._previous_keys(now):
                found = read_clearance(
                    old, token, now=now, ip=ip, user_agent=ua, v4_prefix=self._v4, v6_prefix=self._v6
                )
                if found is not None:
                    break
        if found is None:
            self._cleared.pop(key, None)
            return None
        if len(self._cleared) >= CLEARANCE_CACHE_MAX:
            self._cleared.clear()
        self._cleared[key] = (found, now)
        return found

    # -- the page ----------------------------------------------------------------------------------

    def page(self, decision: Decision | None, next: str, ip: str, ua: str, *, lang: str = "en") -> Reply:
        """The challenge page. With a decision (the door refuses a page) it is a 403; asked for
        directly (``GET /.sw/challenge``) it is a 200 and asks at least what this client's latest
        challenged request was owed. Never cached either way."""
        policy = self.policy.challenge
        bits = policy.min_bits
        kind: ChallengeKind = "pow"
        if decision is not None:
            self.note_demand(ip, ua, decision)
            if decision.challenge_bits:
                bits = max(bits, min(policy.max_bits, decision.challenge_bits))
            kind = decision.challenge_kind
        else:
            owed = self.owed(ip, ua)
            if owed is not None:
                bits = max(bits, min(policy.max_bits, owed[0]))
                kind = owed[1]
        if self.captcha is None:
            kind = "pow"
        token = new_challenge(
            self.key,
            now=self.clock(),
            ip=ip,
            user_agent=ua,
            bits=bits,
            rng_bytes=secrets.token_bytes(16),
            v4_prefix=self._v4,
            v6_prefix=self._v6,
            kind=kind,
        )
        self._count("issued", "issued." + kind)
        reference = new_reference()
        target = safe_next(next)
        body = _render(
            challenge=token,
            bits=bits,
            next=target,
            nojs_delay=policy.nojs_delay_seconds,
            lang=lang,
            help_url=self.policy.actions.help_url,
            reference=reference,
            widget=self.captcha.widget if kind == "captcha" and self.captcha is not None else None,
        ).encode("utf-8")
        return _html_reply(403 if decision is not None else 200, body, reference)

    def close(self) -> None:
        """Close the CAPTCHA provider's connections, if any."""
        if self.captcha is not None:
            self.captcha.close()

    # -- owed challenges -------------------------------------------------------------------------

    def _client_key(self, ip: str, ua: str) -> tuple[str, str]:
        return network_of(ip, self._v4, self._v6), ua_hash(ua)

    def note_demand(self, ip: str, ua: str, decision: Decision) -> None:
        """Remember the challenge ``decision`` asks of this client (network + user agent), so a
        direct ``GET /.sw/challenge`` gets no easier one. Doors call it for every enforced
        challenge decision, whatever the answer's format (the Warden does, in ``decide_http``)."""
        if decision.action is not Action.CHALLENGE or not decision.enforced:
            return
        key = self._client_key(ip, ua)
        now = self.clock()
        with self._lock:
            owed = self._owed
            owed.pop(key, None)
            # Entries are added in time order, so expired ones are at the front.
            while owed and (len(owed) >= self._owed_max or next(iter(owed.values()))[2] <= now):
                owed.popitem(last=False)
            owed[key] = (decision.challenge_bits, decision.challenge_kind, now + CHALLENGE_SECONDS)

    def owed(self, ip: str, ua: str) -> tuple[int, ChallengeKind] | None:
        """(bits, kind) this client's latest challenged request was owed, if within a challenge's
        lifetime; None otherwise."""
        with self._lock:
            found = self._owed.get(self._client_key(ip, ua))
        if found is None or found[2] <= self.clock():
            return None
        return found[0], found[1]

    # -- the answer --------------------------------------------------------------------------------

    def verify(self, form: Mapping[str, str], ip: str, ua: str, *, secure: bool = False) -> Reply:
        """Check a posted answer: 303 back to ``next`` with the clearance cookie, or a 403 page
        (503 when the CAPTCHA provider failed) that says what went wrong and offers a fresh check.

        A CAPTCHA answer (``kind=captcha``) is checked with the provider over the network: this
        call then blocks for up to the provider timeout. It never raises for anything posted.
        """
        now = self.clock()
        target = safe_next(form.get("next", "/"))
        token = form.get("challenge", "")
        signals: tuple[str, ...] = ()
        how: str
        if form.get("kind") == "captcha":
            how = "captcha"
        elif form.get("nojs") == "1":
            # No script ran, so there is no browser report; the wait and the halved budgets
            # that come with a no-JS clearance stand in for it.
            how = "nojs"
        else:
            how = "pow"
            signals = read_report(form.get("signals"))
        verdict = self._check(how, self.key, form, token, now, ip, ua)
        if verdict.reason == "forged" and self._old_keys:
            for old in self._previous_keys(now):  # issued here before the key was replaced
                verdict = self._check(how, old, form, token, now, ip, ua)
                if verdict.reason != "forged":
                    break
        reason: str = verdict.reason
        # Spent before the provider is asked: one challenge buys one question to the provider,
        # however many copies of the form are posted at once.
        if verdict.ok and not self._spend(verdict, now):
            reason = "replayed"
        if reason == "ok" and how == "captcha":
            reason = self._ask_provider(form, ip)
        if reason != "ok":
            self._count("refused." + reason, "failed." + how)
            self._tell(Outcome(now, ip, ua, passed=False, how=how, detail=(reason,)))
            return self._failed(reason, target)
        self._count("passed", "passed." + how)
        self._tell(Outcome(now, ip, ua, passed=True, how=how, detail=signals))
        hours = self.policy.challenge.clearance_hours
        cookie = new_clearance(
            self.key,
            now=now,
            ip=ip,
            user_agent=ua,
            how=how,
            hours=hours,
            v4_prefix=self._v4,
            v6_prefix=self._v6,
            signals=signals,
        )
        attributes = f"Max-Age={int(hours * 3600)}; Path=/; HttpOnly; SameSite=Lax"
        if secure:
            attributes += "; Secure"
        headers = [
            ("Location", target),
            ("Set-Cookie", f"{COOKIE}={cookie}; {attributes}"),
            ("Cache-Control", "no-store"),
            ("Content-Length", "0"),
        ]
        return Reply(status=303, headers=headers, body=b"", reference="")

    def _check(
        self, how: str, key: bytes, form: Mapping[str, str], token: str, now: float, ip: str, ua: str
    ) -> Verdict:
        """Check an answer's challenge (and proof, or wait) against one key."""
        if how == "captcha":
            return check_captcha_challenge(
                key, token, now=now, ip=ip, user_agent=ua, v4_prefix=self._v4, v6_prefix=self._v6
            )
        if how == "nojs":
            return check_wait(
                key,
                token,
                now=now,
                ip=ip,
                user_agent=ua,
                delay=self.policy.challenge.nojs_delay_seconds,
                v4_prefix=self._v4,
                v6_prefix=self._v6,
            )
        return check_solution(
            key,
            token,
            form.get("nonce", ""),
            now=now,
            ip=ip,
            user_agent=ua,
            v4_prefix=self._v4,
            v6_prefix=self._v6,
        )

    def _tell(self, outcome: Outcome) -> None:
        if self.on_outcome is not None:
            try:
                self.on_outcome(outcome)
            except Exception:  # the record of an answer must never cost the person the answer
                log.exception("could not record a challenge outcome")

    def _ask_provider(self, form: Mapping[str, str], ip: str) -> str:
        """Ask the CAPTCHA provider about the form's token: "ok", or why it was not accepted."""
        verifier = self.captcha
        if verifier is None:  # issued before a policy reload removed the provider
            return "captcha_off"
        result = verifier.verify(verifier.token_of(form), ip)
        if result.ok:
            return "ok"
        log.info("scrapewarden: CAPTCHA answer not accepted (%s): %s", result.outcome, result.detail)
        return "captcha_" + result.outcome

    def _spend(self, verdict: Verdict, now: float) -> bool:
        """Mark a challenge used; False if it already was."""
        until = now + CHALLENGE_SECONDS + 10
        with self._lock:
            spent = self._spent
            if verdict.id in spent:
                return False
            # Entries are added in time order, so expired ones are at the front.
            while spent and (len(spent) >= self._spent_max or next(iter(spent.values())) <= now):
                spent.popitem(last=False)
            spent[verdict.id] = until
        if self.store is not None:
            try:
                return self.store.spend_once("challenge:" + verdict.id, until, now)
            except Exception:
                log.warning("could not mark a challenge as spent in the state store; using local memory")
        return True

    def _failed(self, reason: str, target: str) -> Reply:
        reference = new_reference()
        again = f"{PAGE_PATH}?next={_quote(target)}"
        body = _FAILED_PAGE.format(
            why=html.escape(_FAILED.get(reason, "The check did not pass.")),
            again=html.escape(again, quote=True),
            reference=html.escape(reference),
        ).encode("utf-8")
        return _html_reply(503 if reason in _NOT_THEIR_FAULT else 403, body, reference)


def _verifier(policy: Policy) -> CaptchaVerifier | None:
    if not policy.challenge.captcha.provider:
        return None
    from .captcha import CaptchaVerifier

    return CaptchaVerifier(policy.challenge.captcha)


def parse_form(body: bytes) -> dict[str, str]:
    """A urlencoded form body (first value per field). Bad bytes are replaced, never fatal."""
    from urllib.parse import parse_qsl

    text = body[:MAX_FORM_BYTES].decode("utf-8", "replace")
    out: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, max_num_fields=20):
        out.setdefault(name, value)
    return out


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="")


def _html_reply(status: int, body: bytes, reference: str) -> Reply:
    headers = [
        ("Cache-Control", "no-store"),
        ("X-ScrapeWarden-Reference", reference),
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]
    return Reply(status=status, headers=headers, body=body, reference=reference)


def _render(
    *,
    challenge: str,
    bits: int,
    next: str,
    nojs_delay: float,
    lang: str,
    help_url: str,
    reference: str,
    widget: Widget | None = None,
) -> str:
    """The browser-side page when it is installed, else a minimal page with the same form."""
    try:
        from . import page
    except ImportError:
        page = None  # type: ignore[assignment]
    delay = int(nojs_delay + 0.999)
    if page is not None:
        return page.render(
            challenge=challenge,
            bits=bits,
            next=next,
            nojs_delay=delay,
            lang=lang,
            help_url=help_url,
            reference=reference,
            widget=widget,
        )
    esc = html.escape
    return _PLACEHOLDER.format(
        challenge=esc(challenge, quote=True),
        next=esc(next, quote=True),
        delay=delay,
        reference=esc(reference),
        data=esc(json.dumps({"bits": bits}), quote=True),
    )


_PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>A quick check is needed</title></head><body><main data-sw="{data}">
<h1>A quick check is needed</h1>
<p>We check that a browser is asking before we show more. This protects the people whose
details are on this site from being copied in bulk.</p>
<form method="post" action="/.sw/verify">
<input type="hidden" name="challenge" value="{challenge}">
<input type="hidden" name="next" value="{next}">
<input type="hidden" name="nojs" value="1">
<p>Wait {delay} seconds, then continue.</p>
<button type="submit">Continue</button>
</form>
<p>Reference: <code>{reference}</code></p>
</main></body></html>
"""

_FAILED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>The check did not pass</title></head><body><main>
<h1>The check did not pass</h1>
<p>{why}</p>
<p><a href="{again}">Try the check again</a>. If this keeps happening, contact the site and
quote the reference below.</p>
<p>Reference: <code>{reference}</code></p>
</main></body></html>
"""


def static_reply(path: str) -> Reply | None:
    """``/.sw/challenge.js`` or ``/.sw/worker.js`` (see :mod:`.assets`); None if not ours or absent."""
    from . import assets

    try:
        body = assets.script(path)
    except OSError:
        return None
    if body is None:
        return None
    headers = [*assets.SCRIPT_HEADERS, ("Content-Length", str(len(body)))]
    return Reply(status=200, headers=headers, body=body, reference="")
