"""Third-party CAPTCHAs: what each provider's widget looks like and how its answer is checked.

Three providers speak nearly the same protocol:

* the page loads the provider's script and holds ``<div class="..." data-sitekey="...">``; the
  script draws the widget there and, once the person passes, puts a one-time token into a form
  field of the provider's name (``cf-turnstile-response``, ``h-captcha-response``,
  ``g-recaptcha-response``);
* the server POSTs ``secret``, ``response`` (the token) and optionally ``remoteip`` to the
  provider's ``siteverify`` URL and gets JSON back: ``success``, ``error-codes``, ``hostname``,
  ``challenge_ts``, and for reCAPTCHA v3 keys a ``score`` (0.0 bot ... 1.0 person) and ``action``.

:func:`read_answer` reads such an answer (pure, so each format is unit-tested);
:class:`CaptchaVerifier` makes the call with httpx. Nothing here ever raises into a door: a
timeout, a refused connection, an HTTP error or JSON that is not the documented shape all come
back as a :class:`CaptchaResult` saying what went wrong. The secret key and the person's token
are never logged.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from ..core.policy import CaptchaPolicy

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("scrapewarden")

ACTION = "sw_challenge"
"""The action name our widget declares (Turnstile ``data-action``; reCAPTCHA v3 ``action``). A
token minted for another form of the same site (say, a login page's) names another action and is
refused here."""
MAX_TOKEN = 4096
"""Longer response tokens are refused unsent: the providers' are at most ~2,000 characters."""
MAX_ANSWER_BYTES = 65536
"""A siteverify answer is a few hundred bytes; anything much larger is not one."""


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider's documented names and URLs."""

    name: str
    label: str
    script_url: str
    widget_class: str
    response_field: str
    verify_url: str
    has_score: bool
    """Whether ``score`` in its answer means "how human" (reCAPTCHA v3). hCaptcha Enterprise
    sends a score too, but there higher means riskier, so it is not compared with ``min_score``."""


PROVIDERS: dict[str, Provider] = {
    "turnstile": Provider(
        name="turnstile",
        label="Cloudflare Turnstile",
        script_url="https://challenges.cloudflare.com/turnstile/v0/api.js",
        widget_class="cf-turnstile",
        response_field="cf-turnstile-response",
        verify_url="https://challenges.cloudflare.com/turnstile/v0/siteverify",
        has_score=False,
    ),
    "hcaptcha": Provider(
        name="hcaptcha",
        label="hCaptcha",
        script_url="https://js.hcaptcha.com/1/api.js",
        widget_class="h-captcha",
        response_field="h-captcha-response",
        verify_url="https://api.hcaptcha.com/siteverify",
        has_score=False,
    ),
    "recaptcha": Provider(
        name="recaptcha",
        label="Google reCAPTCHA",
        script_url="https://www.google.com/recaptcha/api.js",
        widget_class="g-recaptcha",
        response_field="g-recaptcha-response",
        verify_url="https://www.google.com/recaptcha/api/siteverify",
        has_score=True,
    ),
}

CONFIG_ERRORS = frozenset(
    {
        "missing-input-secret",
        "invalid-input-secret",
        "sitekey-secret-mismatch",
        "invalid-or-already-seen-response-and-secret",
        "bad-request",
        "internal-error",
    }
)
"""Error codes that say the site (or the provider), not the person, is at fault."""

Outcome = Literal["ok", "missing", "refused", "unreachable", "misconfigured"]


@dataclass(frozen=True, slots=True)
class Widget:
    """What the challenge page needs to draw the provider's widget."""

    script_url: str
    widget_class: str
    site_key: str
    response_field: str
    action: str = ACTION


@dataclass(frozen=True, slots=True)
class CaptchaResult:
    """The provider's verdict on one token. ``ok`` only when ``outcome == "ok"``.

    ``detail`` is for logs and the operator (error codes, the exception's kind, the score); it
    never holds the secret or the token.
    """

    outcome: Outcome
    detail: str = ""
    codes: tuple[str, ...] = ()
    hostname: str = ""
    challenge_ts: str = ""
    score: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def read_answer(
    provider: Provider,
    status: int,
    body: bytes,
    *,
    min_score: float = 0.5,
    hostnames: frozenset[str] = frozenset(),
) -> CaptchaResult:
    """Read a siteverify answer (HTTP ``status`` and ``body``) in the provider's documented format."""
    if not 200 <= status < 300:
        return CaptchaResult("unreachable", f"HTTP {status} from the provider")
    if len(body) > MAX_ANSWER_BYTES:
        return CaptchaResult("unreachable", "answer too large to be a siteverify answer")
    try:
        data: Any = json.loads(body)
    except ValueError:
        return CaptchaResult("unreachable", "answer is not JSON")
    if not isinstance(data, dict) or not isinstance(data.get("success"), bool):
        return CaptchaResult("unreachable", "answer has no true/false 'success'")
    raw_codes = data.get("error-codes") or []
    codes = tuple(str(code)[:64] for code in raw_codes[:10]) if isinstance(raw_codes, list) else ()
    hostname = _text(data.get("hostname"))
    stamp = _text(data.get("challenge_ts"))
    raw_score = data.get("score")
    score = (
        float(raw_score) if isinstance(raw_score, int | float) and not isinstance(raw_score, bool) else None
    )
    if score is not None and not math.isfinite(score):
        return CaptchaResult("unreachable", "answer has a score that is not a number")
    found = CaptchaResult(
        "ok", "" if score is None else f"score {score:g}", codes, hostname[:253], stamp[:40], score
    )
    if not data["success"]:
        outcome: Outcome = "misconfigured" if CONFIG_ERRORS.intersection(codes) else "refused"
        return replace(found, outcome=outcome, detail="error codes: " + (", ".join(codes) or "none given"))
    if hostnames and hostname.lower() not in hostnames:
        return replace(
            found, outcome="refused", detail=f"solved on another host ({found.hostname or 'none given'})"
        )
    action = data.get("action")
    if isinstance(action, str) and action and action != ACTION:
        return replace(
            found, outcome="refused", detail=f"token was made for another action ({action[:64]!r})"
        )
    if provider.has_score and score is not None and score < min_score:
        return replace(found, outcome="refused", detail=f"score {score:g} below the minimum {min_score:g}")
    return found


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


class CaptchaVerifier:
    """One provider, its keys and a pooled HTTP client. Thread-safe: doors call it from worker
    threads, since the provider's answer can take a while."""

    def __init__(self, policy: CaptchaPolicy, client: httpx.Client | None = None) -> None:
        if policy.provider not in PROVIDERS:
            raise ValueError(f"unknown CAPTCHA provider {policy.provider!r}")
        try:
            import httpx  # noqa: F401  (checked at start-up, not on a person's first answer)
        except ImportError as exc:
            raise RuntimeError("CAPTCHA providers need httpx: pip install 'scrapewarden[captcha]'") from exc
        self.provider = PROVIDERS[policy.provider]
        self.policy = policy
        self.verify_url = policy.verify_url or self.provider.verify_url
        self.widget = Widget(
            script_url=policy.script_url or self.provider.script_url,
            widget_class=self.provider.widget_class,
            site_key=policy.site_key,
            response_field=self.provider.response_field,
        )
        self._hostnames = frozenset(policy.hostnames)
        self._client = client
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # the policy inside holds the secret; say only what is public
        return f"CaptchaVerifier({self.provider.name!r}, verify_url={self.verify_url!r})"

    def token_of(self, form: Mapping[str, str]) -> str:
        """The widget's token from a posted form ("" when absent or implausibly long)."""
        token = form.get(self.provider.response_field, "")
        return token if 0 < len(token) <= MAX_TOKEN else ""

    def _http(self) -> httpx.Client:
        import httpx

        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.policy.timeout_seconds), follow_redirects=False
                )
            return self._client

    def verify(self, token: str, remote_ip: str = "") -> CaptchaResult:
        """Ask the provider about ``token``. Blocks for up to about ``timeout_seconds`` per
        network step; never raises."""
        if not token:
            return CaptchaResult("missing", "no token in the form")
        import httpx

        form = {"secret": self.policy.secret_key, "response": token}
        if remote_ip and self.policy.send_remote_ip:
            form["remoteip"] = remote_ip
        if self.provider.name == "hcaptcha":
            # Lets hCaptcha say so when the site key and the secret belong to different sites.
            form["sitekey"] = self.policy.site_key
        host = urlsplit(self.verify_url).netloc
        try:
            answer = self._http().post(self.verify_url, data=form)
        except httpx.TimeoutException:
            log.warning("scrapewarden: CAPTCHA provider %s (%s) timed out", self.provider.name, host)
            return CaptchaResult("unreachable", "the provider did not answer in time")
        except httpx.HTTPError as exc:
            log.warning(
                "scrapewarden: CAPTCHA provider %s (%s) unreachable: %s",
                self.provider.name,
                host,
                type(exc).__name__,
            )
            return CaptchaResult("unreachable", f"could not reach the provider ({type(exc).__name__})")
        except Exception as exc:  # a door must never see an exception from here
            log.warning("scrapewarden: CAPTCHA check failed: %s", type(exc).__name__)
            return CaptchaResult("unreachable", f"could not ask the provider ({type(exc).__name__})")
        result = read_answer(
            self.provider,
            answer.status_code,
            answer.content,
            min_score=self.policy.min_score,
            hostnames=self._hostnames,
        )
        if result.outcome == "misconfigured":
            log.error(
                "scrapewarden: CAPTCHA provider %s says the site's keys are wrong (%s); check "
                "challenge.captcha.site_key and SCRAPEWARDEN_CHALLENGE__CAPTCHA__SECRET_KEY",
                self.provider.name,
                ", ".join(result.codes),
            )
        elif result.outcome == "unreachable":
            log.warning("scrapewarden: CAPTCHA provider %s (%s): %s", self.provider.name, host, result.detail)
        return result

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
