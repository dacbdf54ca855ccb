"""Signed challenges, proof-of-work checks and clearance tokens.

Pure: no I/O, no clock, no randomness of its own (the caller passes ``now`` and random bytes).
Both a challenge and a clearance are ``base64url(payload) + "." + base64url(hmac_sha256(key,
payload))`` with a compact JSON payload, so the server keeps no state for either: checking one
costs a base64 decode, one HMAC and (for a solution) one SHA-256.

- A challenge payload is ``{"v":1,"id":..,"iat":..,"d":..,"net":..,"ua":..}``; it is valid for
  :data:`CHALLENGE_SECONDS`. Its ``id`` lets the door refuse a second use (replay); that memory
  is the door's job, not this module's. A CAPTCHA challenge also carries ``"k":"captcha"``: it
  can only be answered by the CAPTCHA, never by proof-of-work or the no-JavaScript wait (else a
  scraper sent to the CAPTCHA would take the cheaper way out).
- A clearance payload is ``{"v":1,"net":..,"ua":..,"exp":..,"how":..}``.

Both are bound to the client's network (``/24`` or ``/48`` by default, so a person whose address
changes within their provider's block keeps it) and to a short hash of its user agent, so a token
copied to another network or another client program is worthless.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal

from .challenge_signals import parse_codes
from .fingerprint import network_of
from .policy import Policy

CHALLENGE_SECONDS = 600
"""How long a challenge may be solved for."""
MAX_TOKEN_LENGTH = 1024
"""Longer tokens are refused unread: ours are about 200 characters."""
MAX_NONCE_LENGTH = 24
"""A decimal nonce; 24 digits is far more than any solver needs."""
HOW = frozenset({"pow", "nojs", "captcha"})
"""How a clearance was earned."""

ChallengeKind = Literal["pow", "captcha"]
"""What a challenge asks for: proof-of-work (or the no-JavaScript wait), or a third-party CAPTCHA."""

Reason = Literal[
    "ok", "malformed", "forged", "expired", "network", "user_agent", "too_few_bits", "too_early", "wrong_kind"
]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of checking a solution. ``ok`` only when ``reason == "ok"``."""

    reason: Reason
    id: str = ""
    """The challenge id (for the door's single-use memory); empty unless the signature held."""
    bits: int = 0
    """Difficulty the challenge asked for."""

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def ua_hash(user_agent: str) -> str:
    """First 16 hex digits of SHA-256 of the user agent: binds without storing it."""
    return hashlib.sha256(user_agent.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def sign(key: bytes, payload: dict[str, Any]) -> str:
    """The signed token for ``payload``."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    mac = hmac.new(key, body, hashlib.sha256).digest()
    return _b64encode(body) + "." + _b64encode(mac)


def _open(key: bytes, token: str) -> dict[str, Any] | Literal[False] | None:
    """The payload if the signature holds; False if the token is ours in shape but forged;
    None if it is not a token at all."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    body_text, dot, mac_text = token.partition(".")
    if not dot:
        return None
    body = _b64decode(body_text)
    mac = _b64decode(mac_text)
    if body is None or mac is None:
        return None
    expected = hmac.new(key, body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        return False
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("v") != 1:
        return None
    return payload


def verify(key: bytes, token: str, now: float) -> dict[str, Any] | None:
    """The payload of a genuine, unexpired token (``exp`` if it has one), else None."""
    payload = _open(key, token)
    if not payload:
        return None
    exp = payload.get("exp")
    if exp is not None and not (isinstance(exp, int | float) and now < exp):
        return None
    return payload


def leading_zero_bits(digest: bytes) -> int:
    """How many leading bits of ``digest`` are zero."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def new_challenge(
    key: bytes,
    *,
    now: float,
    ip: str,
    user_agent: str,
    bits: int,
    rng_bytes: bytes,
    v4_prefix: int = 24,
    v6_prefix: int = 48,
    kind: ChallengeKind = "pow",
) -> str:
    """A signed challenge asking for ``bits`` leading zero bits (or, with ``kind="captcha"``, for
    a CAPTCHA); ``rng_bytes`` (16 random bytes) become its single-use id."""
    payload: dict[str, Any] = {
        "v": 1,
        "id": rng_bytes.hex(),
        "iat": int(now),
        "d": int(bits),
        "net": network_of(ip, v4_prefix, v6_prefix),
        "ua": ua_hash(user_agent),
    }
    if kind != "pow":
        payload["k"] = kind
    return sign(key, payload)


def _check_challenge(
    key: bytes,
    challenge: str,
    *,
    now: float,
    ip: str,
    user_agent: str,
    v4_prefix: int,
    v6_prefix: int,
    kind: ChallengeKind,
) -> tuple[Verdict, int]:
    """Signature, age, binding and kind of a challenge; the verdict and the challenge's issue time."""
    payload = _open(key, challenge)
    if payload is False:
        return Verdict("forged"), 0
    if payload is None:
        return Verdict("malformed"), 0
    cid, iat, bits = payload.get("id"), payload.get("iat"), payload.get("d")
    if not (isinstance(cid, str) and isinstance(iat, int) and isinstance(bits, int) and 0 < bits <= 64):
        return Verdict("malformed"), 0
    # A few seconds of grace before ``iat``: instances sharing a key may disagree on the time.
    if not (iat - 5 <= now < iat + CHALLENGE_SECONDS):
        return Verdict("expired", cid, bits), iat
    if payload.get("net") != network_of(ip, v4_prefix, v6_prefix):
        return Verdict("network", cid, bits), iat
    if payload.get("ua") != ua_hash(user_agent):
        return Verdict("user_agent", cid, bits), iat
    if payload.get("k", "pow") != kind:
        return Verdict("wrong_kind", cid, bits), iat
    return Verdict("ok", cid, bits), iat


def check_solution(
    key: bytes,
    challenge: str,
    nonce: str,
    *,
    now: float,
    ip: str,
    user_agent: str,
    v4_prefix: int = 24,
    v6_prefix: int = 48,
) -> Verdict:
    """Whether ``nonce`` solves ``challenge`` for this client, now.

    Does not know whether the challenge was used before: the caller checks ``Verdict.id``.
    """
    verdict, _ = _check_challenge(
        key,
        challenge,
        now=now,
        ip=ip,
        user_agent=user_agent,
        v4_prefix=v4_prefix,
        v6_prefix=v6_prefix,
        kind="pow",
    )
    if not verdict.ok:
        return verdict
    if not (
        isinstance(nonce, str) and 0 < len(nonce) <= MAX_NONCE_LENGTH and nonce.isascii() and nonce.isdigit()
    ):
        return Verdict("malformed", verdict.id, verdict.bits)
    digest = hashlib.sha256(f"{challenge}:{nonce}".encode("ascii")).digest()
    if leading_zero_bits(digest) < verdict.bits:
        return Verdict("too_few_bits", verdict.id, verdict.bits)
    return verdict


def check_wait(
    key: bytes,
    challenge: str,
    *,
    now: float,
    ip: str,
    user_agent: str,
    delay: float,
    v4_prefix: int = 24,
    v6_prefix: int = 48,
) -> Verdict:
    """The no-JavaScript path: the challenge is genuine and at least ``delay`` seconds old.

    The wait stands in for the work: a script pays it for every clearance it wants.
    """
    verdict, iat = _check_challenge(
        key,
        challenge,
        now=now,
        ip=ip,
        user_agent=user_agent,
        v4_prefix=v4_prefix,
        v6_prefix=v6_prefix,
        kind="pow",
    )
    if verdict.ok and now < iat + delay:
        return Verdict("too_early", verdict.id, verdict.bits)
    return verdict


def check_captcha_challenge(
    key: bytes,
    challenge: str,
    *,
    now: float,
    ip: str,
    user_agent: str,
    v4_prefix: int = 24,
    v6_prefix: int = 48,
) -> Verdict:
    """Whether ``challenge`` is a genuine, unexpired CAPTCHA challenge issued to this client.

    Only the token: whether the CAPTCHA itself was solved is the provider's answer, fetched by
    the caller. Does not know about earlier use either: the caller checks ``Verdict.id``.
    """
    verdict, _ = _check_challenge(
        key,
        challenge,
        now=now,
        ip=ip,
        user_agent=user_agent,
        v4_prefix=v4_prefix,
        v6_prefix=v6_prefix,
        kind="captcha",
    )
    return verdict


def new_clearance(
    key: bytes,
    *,
    now: float,
    ip: str,
    user_agent: str,
    how: str,
    hours: float,
    v4_prefix: int = 24,
    v6_prefix: int = 48,
    signals: tuple[str, ...] = (),
) -> str:
    """A clearance token for this client, valid for ``hours``. ``signals`` are the codes of
    :mod:`.challenge_signals` the browser showed while solving; they travel with the clearance
    so every later request is judged with them."""
    if how not in HOW:
        raise ValueError(f"unknown clearance kind {how!r}")
    payload: dict[str, Any] = {
        "v": 1,
        "net": network_of(ip, v4_prefix, v6_prefix),
        "ua": ua_hash(user_agent),
        "exp": int(now + hours * 3600),
        "how": how,
    }
    if signals:
        payload["s"] = ",".join(signals)
    return sign(key, payload)


@dataclass(frozen=True, slots=True)
class Clearance:
    """A valid clearance: how it was earned and what the browser showed while earning it."""

    how: str
    signals: tuple[str, ...] = ()


def read_clearance(
    key: bytes,
    cookie_value: str,
    *,
    now: float,
    ip: str,
    user_agent: str,
    v4_prefix: int = 24,
    v6_prefix: int = 48,
) -> Clearance | None:
    """The clearance this cookie grants this client, or None when the cookie is missing,
    forged, expired, or was issued to another network or user agent."""
    if not cookie_value:
        return None
    payload = verify(key, cookie_value, now)
    if payload is None or "exp" not in payload:
        return None
    how = payload.get("how")
    if how not in HOW:
        return None
    if payload.get("net") != network_of(ip, v4_prefix, v6_prefix) or payload.get("ua") != ua_hash(user_agent):
        return None
    raw = payload.get("s", "")
    return Clearance(str(how), parse_codes(raw) if isinstance(raw, str) else ())


def clearance_of(
    key: bytes,
    cookie_value: str,
    *,
    now: float,
    ip: str,
    user_agent: str,
    v4_prefix: int = 24,
    v6_prefix: int = 48,
) -> str | None:
    """How this client earned its clearance ("pow", "nojs", "captcha"), or None (see
    :func:`read_clearance`)."""
    found = read_clearance(
        key, cookie_value, now=now, ip=ip, user_agent=user_agent, v4_prefix=v4_prefix, v6_prefix=v6_prefix
    )
    return found.how if found else None


def bits_for_score(score: float, policy: Policy) -> int:
    """Difficulty for a risk score: ``min_bits`` at the challenge threshold, rising linearly to
    ``max_bits`` at the block threshold (harder work for the more suspicious)."""
    low, high = policy.thresholds.challenge, policy.thresholds.block
    lo_bits, hi_bits = policy.challenge.min_bits, policy.challenge.max_bits
    if high <= low:
        return lo_bits if score < low else hi_bits
    share = min(1.0, max(0.0, (score - low) / (high - low)))
    return lo_bits + int(share * (hi_bits - lo_bits))


def captcha_from(policy: Policy) -> float:
    """The risk score at which challenges become CAPTCHAs: ``challenge.captcha.from_score``, or
    halfway between the challenge and block thresholds when it is not set."""
    start = policy.challenge.captcha.from_score
    if start is not None:
        return start
    return (policy.thresholds.challenge + policy.thresholds.block) / 2


def kind_for_score(score: float, policy: Policy) -> ChallengeKind:
    """Which challenge a risk score calls for: a CAPTCHA from :func:`captcha_from` up, when a
    provider is configured; proof-of-work otherwise (the invisible one, for the milder risks)."""
    if policy.challenge.captcha.provider and score >= captcha_from(policy):
        return "captcha"
    return "pow"


def clearance_suffices(how: str, score: float, policy: Policy) -> bool:
    """Whether a clearance earned ``how`` spares a client the challenge its score calls for.

    Proof-of-work and the no-JavaScript wait do not stand in for a CAPTCHA: a scraper that solved
    the cheap check once must not keep it while its score climbs into the CAPTCHA band.
    """
    return how == "captcha" or kind_for_score(score, policy) == "pow"
