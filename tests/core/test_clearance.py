"""Challenges, proof-of-work solutions and clearance tokens (pure functions, real hashing)."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from scrapewarden.core.clearance import (
    CHALLENGE_SECONDS,
    bits_for_score,
    captcha_from,
    check_captcha_challenge,
    check_solution,
    check_wait,
    clearance_of,
    clearance_suffices,
    kind_for_score,
    leading_zero_bits,
    new_challenge,
    new_clearance,
    sign,
    verify,
)
from scrapewarden.core.policy import ChallengePolicy, Policy

KEY = b"k" * 32
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
NOW = 1_800_000_000.0


def solve(challenge: str, bits: int) -> str:
    """Brute force, as the browser's worker does."""
    for n in itertools.count():
        digest = hashlib.sha256(f"{challenge}:{n}".encode()).digest()
        if leading_zero_bits(digest) >= bits:
            return str(n)
    raise AssertionError("unreachable")


def challenge(bits: int = 8, ip: str = "203.0.113.9", ua: str = UA, now: float = NOW) -> str:
    return new_challenge(KEY, now=now, ip=ip, user_agent=ua, bits=bits, rng_bytes=bytes(range(16)))


def test_leading_zero_bits() -> None:
    assert leading_zero_bits(bytes(32)) == 256
    assert leading_zero_bits(b"\x80" + bytes(31)) == 0
    assert leading_zero_bits(b"\x00\x01" + bytes(30)) == 15
    assert leading_zero_bits(b"\x00\x00\x3f" + bytes(29)) == 18


def test_sign_and_verify_round_trip_and_forgery() -> None:
    token = sign(KEY, {"v": 1, "x": "y", "exp": NOW + 10})
    assert verify(KEY, token, NOW) == {"v": 1, "x": "y", "exp": NOW + 10}
    assert verify(b"other key", token, NOW) is None
    assert verify(KEY, token, NOW + 10) is None  # expired
    body, _, mac = token.partition(".")
    forged_body = sign(b"attacker", {"v": 1, "x": "z"}).partition(".")[0]
    assert verify(KEY, f"{forged_body}.{mac}", NOW) is None
    assert verify(KEY, f"{body}.{mac[:-2]}AA", NOW) is None
    for junk in ("", ".", "abc", "a.b.c", "\u00e9.x", "x" * 5000, "%%%.%%%"):
        assert verify(KEY, junk, NOW) is None


def test_real_solution_passes() -> None:
    token = challenge(bits=10)
    verdict = check_solution(KEY, token, solve(token, 10), now=NOW + 3, ip="203.0.113.77", user_agent=UA)
    assert verdict.ok and verdict.reason == "ok"
    assert verdict.id == bytes(range(16)).hex() and verdict.bits == 10


def test_wrong_nonce_has_too_few_bits() -> None:
    token = challenge(bits=12)
    nonce = next(
        str(n)
        for n in itertools.count()
        if leading_zero_bits(hashlib.sha256(f"{token}:{n}".encode()).digest()) < 12
    )
    assert (
        check_solution(KEY, token, nonce, now=NOW, ip="203.0.113.9", user_agent=UA).reason == "too_few_bits"
    )


def test_forged_challenge_with_easier_difficulty_is_refused() -> None:
    token = challenge(bits=20)
    # An attacker lowers the difficulty and re-signs with a key of its own.
    easy = new_challenge(b"guess", now=NOW, ip="203.0.113.9", user_agent=UA, bits=1, rng_bytes=bytes(16))
    body = easy.partition(".")[0]
    tampered = body + "." + token.partition(".")[2]
    verdict = check_solution(KEY, tampered, solve(tampered, 1), now=NOW, ip="203.0.113.9", user_agent=UA)
    assert verdict.reason == "forged" and not verdict.ok


def test_expired_challenge_is_refused() -> None:
    token = challenge()
    nonce = solve(token, 8)
    late = NOW + CHALLENGE_SECONDS
    assert check_solution(KEY, token, nonce, now=late - 1, ip="203.0.113.9", user_agent=UA).ok
    assert check_solution(KEY, token, nonce, now=late, ip="203.0.113.9", user_agent=UA).reason == "expired"


def test_other_network_and_other_user_agent_are_refused() -> None:
    token = challenge()
    nonce = solve(token, 8)
    assert check_solution(KEY, token, nonce, now=NOW, ip="198.51.100.9", user_agent=UA).reason == "network"
    assert (
        check_solution(KEY, token, nonce, now=NOW, ip="203.0.113.9", user_agent="curl/8").reason
        == "user_agent"
    )


@pytest.mark.parametrize("nonce", ["", "-1", "1e5", "٣", "1" * 100, "12 ", "0x1f"])
def test_malformed_nonces_are_refused(nonce: str) -> None:
    assert not check_solution(KEY, challenge(bits=1), nonce, now=NOW, ip="203.0.113.9", user_agent=UA).ok


def test_clearance_is_not_a_challenge_and_vice_versa() -> None:
    cleared = new_clearance(KEY, now=NOW, ip="203.0.113.9", user_agent=UA, how="pow", hours=1)
    assert check_solution(KEY, cleared, "1", now=NOW, ip="203.0.113.9", user_agent=UA).reason == "malformed"
    assert clearance_of(KEY, challenge(), now=NOW, ip="203.0.113.9", user_agent=UA) is None


def test_clearance_bound_to_network_user_agent_and_time() -> None:
    cookie = new_clearance(KEY, now=NOW, ip="203.0.113.9", user_agent=UA, how="nojs", hours=24)
    assert clearance_of(KEY, cookie, now=NOW + 60, ip="203.0.113.200", user_agent=UA) == "nojs"
    assert clearance_of(KEY, cookie, now=NOW + 60, ip="203.0.114.9", user_agent=UA) is None
    assert clearance_of(KEY, cookie, now=NOW + 60, ip="203.0.113.9", user_agent=UA + " ") is None
    assert clearance_of(KEY, cookie, now=NOW + 24 * 3600, ip="203.0.113.9", user_agent=UA) is None
    assert clearance_of(b"another", cookie, now=NOW, ip="203.0.113.9", user_agent=UA) is None
    assert clearance_of(KEY, "", now=NOW, ip="203.0.113.9", user_agent=UA) is None


def test_clearance_ipv6_uses_the_48() -> None:
    cookie = new_clearance(KEY, now=NOW, ip="2001:db8:1:2::5", user_agent=UA, how="pow", hours=1)
    assert clearance_of(KEY, cookie, now=NOW, ip="2001:db8:1:ffff::9", user_agent=UA) == "pow"
    assert clearance_of(KEY, cookie, now=NOW, ip="2001:db8:2::5", user_agent=UA) is None


def test_unknown_clearance_kind_is_an_error() -> None:
    with pytest.raises(ValueError):
        new_clearance(KEY, now=NOW, ip="203.0.113.9", user_agent=UA, how="bribe", hours=1)


def test_bits_scale_with_score() -> None:
    policy = Policy(challenge=ChallengePolicy(min_bits=14, max_bits=20))
    assert bits_for_score(50, policy) == 14
    assert bits_for_score(10, policy) == 14
    assert bits_for_score(65, policy) == 17
    assert bits_for_score(79.9, policy) == 19
    assert bits_for_score(100, policy) == 20


def test_no_js_wait_counts_from_the_challenge() -> None:
    from scrapewarden.core.clearance import check_wait

    token = challenge()
    early = check_wait(KEY, token, now=NOW + 4, ip="203.0.113.9", user_agent=UA, delay=5)
    assert early.reason == "too_early"
    assert check_wait(KEY, token, now=NOW + 5, ip="203.0.113.9", user_agent=UA, delay=5).ok
    assert check_wait(KEY, token, now=NOW + 5, ip="198.51.100.9", user_agent=UA, delay=5).reason == "network"
    assert check_wait(KEY, token + "x", now=NOW + 5, ip="203.0.113.9", user_agent=UA, delay=5).reason in {
        "forged",
        "malformed",
    }


# -- CAPTCHA challenges and the risk bands ------------------------------------------------------


def captcha_policy(**captcha: object) -> Policy:
    return Policy(
        challenge={
            "captcha": {"provider": "turnstile", "site_key": "site", "secret_key": "s3cret", **captcha}
        }
    )


def captcha_challenge(ip: str = "203.0.113.9", ua: str = UA, now: float = NOW) -> str:
    return new_challenge(
        KEY, now=now, ip=ip, user_agent=ua, bits=8, rng_bytes=bytes(range(16)), kind="captcha"
    )


def test_a_captcha_challenge_is_checked_for_signature_age_binding_and_kind() -> None:
    token = captcha_challenge()
    ok = check_captcha_challenge(KEY, token, now=NOW + 1, ip="203.0.113.9", user_agent=UA)
    assert ok.ok and ok.id == bytes(range(16)).hex()
    assert check_captcha_challenge(KEY, token, now=NOW + 1, ip="203.0.113.200", user_agent=UA).ok  # same /24
    assert (
        check_captcha_challenge(KEY, token, now=NOW + 1, ip="198.51.100.9", user_agent=UA).reason == "network"
    )
    assert check_captcha_challenge(KEY, token, now=NOW + 1, ip="203.0.113.9", user_agent="curl/8").reason == (
        "user_agent"
    )
    late = NOW + CHALLENGE_SECONDS
    assert check_captcha_challenge(KEY, token, now=late, ip="203.0.113.9", user_agent=UA).reason == "expired"
    assert (
        check_captcha_challenge(b"x" * 32, token, now=NOW, ip="203.0.113.9", user_agent=UA).reason == "forged"
    )
    # A proof-of-work challenge is not a CAPTCHA challenge.
    pow_token = challenge()
    assert check_captcha_challenge(KEY, pow_token, now=NOW, ip="203.0.113.9", user_agent=UA).reason == (
        "wrong_kind"
    )


def test_a_captcha_challenge_cannot_be_answered_with_work_or_the_no_js_wait() -> None:
    token = captcha_challenge()
    nonce = solve(token, 8)
    verdict = check_solution(KEY, token, nonce, now=NOW + 1, ip="203.0.113.9", user_agent=UA)
    assert verdict.reason == "wrong_kind"
    waited = check_wait(KEY, token, now=NOW + 60, ip="203.0.113.9", user_agent=UA, delay=5)
    assert waited.reason == "wrong_kind"
    # Proof-of-work challenges still carry no kind field and still pass.
    assert "k" not in (verify(KEY, challenge(), NOW) or {"k": "missing"})
    assert check_solution(
        KEY, challenge(), solve(challenge(), 8), now=NOW, ip="203.0.113.9", user_agent=UA
    ).ok


def test_challenge_kind_follows_the_risk_band() -> None:
    banded = captcha_policy(from_score=65)
    assert [kind_for_score(s, banded) for s in (50, 64.9, 65, 79)] == ["pow", "pow", "captcha", "captcha"]
    # Unset: halfway between the challenge (50) and block (80) thresholds.
    halfway = captcha_policy()
    assert captcha_from(halfway) == 65
    assert kind_for_score(64, halfway) == "pow" and kind_for_score(66, halfway) == "captcha"
    # No provider: always proof-of-work, however risky.
    assert kind_for_score(79.9, Policy()) == "pow"


def test_only_a_captcha_clearance_spares_a_client_in_the_captcha_band() -> None:
    banded = captcha_policy(from_score=65)
    assert clearance_suffices("pow", 60, banded) and clearance_suffices("nojs", 60, banded)
    assert not clearance_suffices("pow", 70, banded) and not clearance_suffices("nojs", 70, banded)
    assert clearance_suffices("captcha", 70, banded)
    assert clearance_suffices("pow", 79, Policy())  # no provider: any clearance will do


@pytest.mark.parametrize(
    ("captcha", "thresholds", "message"),
    [
        ({"from_score": 90}, {}, "must lie between thresholds.challenge (50) and thresholds.block (80)"),
        ({"from_score": 40}, {}, "must lie between"),
        ({"from_score": 30}, {"throttle": 10, "challenge": 35, "block": 60}, "(35)"),
        ({"secret_key": ""}, {}, "needs site_key and secret_key"),
        ({"verify_url": "http://captcha.example/siteverify"}, {}, "https://"),
        ({"script_url": "http://127.evil.example/api.js"}, {}, "https://"),
        ({"verify_url": "ftp://127.0.0.1/x"}, {}, "https://"),
    ],
)
def test_bad_captcha_settings_are_refused_clearly(captcha: dict, thresholds: dict, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Policy(
            thresholds=thresholds,
            challenge={
                "captcha": {"provider": "hcaptcha", "site_key": "k", "secret_key": "s3cret", **captcha}
            },
        )
    assert message in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_loopback_provider_urls_are_allowed_and_the_secret_stays_out_of_repr() -> None:
    policy = captcha_policy(verify_url="http://127.0.0.1:9/siteverify", script_url="http://[::1]:9/api.js")
    assert policy.challenge.captcha.verify_url == "http://127.0.0.1:9/siteverify"
    assert "s3cret" not in repr(policy) and "s3cret" not in str(policy)
