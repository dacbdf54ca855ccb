"""The sample of addresses whose every request is recorded: fixed per address, keyed, sized."""

from __future__ import annotations

import pytest

from scrapewarden.core.pseudonym import Pseudonymizer
from scrapewarden.core.sampling import in_sample, is_tag, sample_only, sample_point, share_of, tag

KEY = Pseudonymizer(b"k" * 32)
ADDRESSES = [KEY.ip(f"198.51.{i // 256}.{i % 256}") for i in range(20_000)]


def test_an_address_is_always_in_or_always_out() -> None:
    first = [in_sample(KEY, a, 0.1) for a in ADDRESSES[:500]]
    again = [in_sample(Pseudonymizer(b"k" * 32), a, 0.1) for a in ADDRESSES[:500]]
    assert first == again and any(first) and not all(first)


@pytest.mark.parametrize("share", [0.01, 0.05, 0.25])
def test_the_sample_is_about_the_share(share: float) -> None:
    picked = sum(in_sample(KEY, a, share) for a in ADDRESSES)
    # 20 000 addresses: the binomial's standard deviation is under 1 % of them.
    assert abs(picked / len(ADDRESSES) - share) < 0.01 + share * 0.1


def test_a_larger_share_keeps_every_address_of_a_smaller_one() -> None:
    small = {a for a in ADDRESSES if in_sample(KEY, a, 0.02)}
    large = {a for a in ADDRESSES if in_sample(KEY, a, 0.1)}
    assert small and small < large


def test_the_pick_depends_on_the_key() -> None:
    other = Pseudonymizer(b"o" * 32)
    mine = {a for a in ADDRESSES if in_sample(KEY, a, 0.1)}
    theirs = {a for a in ADDRESSES if in_sample(other, a, 0.1)}
    assert len(mine & theirs) < len(mine) // 2  # about a tenth overlap by chance


def test_no_share_and_the_whole_share() -> None:
    assert not any(in_sample(KEY, a, 0.0) for a in ADDRESSES[:100])
    assert all(in_sample(KEY, a, 1.0) for a in ADDRESSES[:100])
    assert all(0 <= sample_point(KEY, a) < 1 for a in ADDRESSES[:100])
    # Without a key (pseudonymisation off) the pick still works, unkeyed.
    plain = Pseudonymizer(None)
    assert 0 < sum(in_sample(plain, f"203.0.113.{i}", 0.5) for i in range(256)) < 256


def test_the_tag_carries_the_share() -> None:
    assert share_of(["rate: 300 requests a minute", tag(0.05)]) == 0.05
    assert is_tag(tag(1.0)) and share_of([tag(1.0)]) == 1.0
    assert share_of(["rate"]) is None
    assert share_of(["sampled share=nope"]) is None and share_of(["sampled share=7"]) is None


def test_only_allowed_events_no_operator_allow_let_through_are_sample_only() -> None:
    from scrapewarden.core.allows import allow_reason

    sampled = [tag(0.01)]
    assert sample_only("allow", sampled)
    # An operator's allow overriding a refusal is a decision to show, sampled address or not.
    assert not sample_only("allow", [allow_reason("ip", "block"), "banned (ip)", *sampled])
    assert not sample_only("block", sampled)
    assert not sample_only("challenge", [])
