"""Replay: the same requests under two policies, counted and compared."""

from __future__ import annotations

import pytest

from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import Policy
from scrapewarden.core.replay import MAX_CHANGED, replay

START = 1_800_000_000.0


def _budget(per_hour: int) -> dict[str, dict[str, int]]:
    return {"per_ip": {"requests_per_minute": 240, "profiles_per_hour": per_hour, "profiles_per_day": 1500}}


def _lookups(count: int, ip: str = "2001:db8::7") -> list[RequestFacts]:
    return [RequestFacts(now=START + i, ip=ip, path=f"/people/{i}") for i in range(count)]


def test_a_lower_budget_stops_more_of_the_same_requests() -> None:
    current = Policy(protected=[{"pattern": "/people/{id}"}])
    draft = Policy(protected=[{"pattern": "/people/{id}"}], limits=_budget(3))
    result = replay(_lookups(20), current, draft)
    assert result.requests == 20
    assert sum(result.current.values()) == sum(result.draft.values()) == 20
    assert result.draft["allow"] < result.current["allow"]
    assert result.changed_count == result.stricter > 0 and result.milder == 0
    first = result.changed[0]
    assert (first.current, first.facts.path) == ("allow", "/people/2")
    assert any("budget 3" in reason for reason in first.draft_reasons)


def test_the_same_policy_changes_nothing_and_the_kept_list_is_bounded() -> None:
    policy = Policy(protected=[{"pattern": "/people/{id}"}])
    assert replay(_lookups(30), policy, policy).changed_count == 0
    strict = Policy(protected=[{"pattern": "/people/{id}"}], limits=_budget(1))
    # Two lookups from each of many addresses: the draft stops every second one.
    pairs = [
        RequestFacts(now=START + n, ip=f"2001:db8::{n // 2 + 1:x}", path=f"/people/{n * 7919 % 100_003}")
        for n in range(2 * (MAX_CHANGED + 50))
    ]
    many = replay(pairs, policy, strict)
    assert many.changed_count > MAX_CHANGED and len(many.changed) == MAX_CHANGED


def test_a_sample_is_scaled_up_by_its_share() -> None:
    current = Policy(protected=[{"pattern": "/people/{id}"}])
    draft = Policy(protected=[{"pattern": "/people/{id}"}], limits=_budget(3))
    result = replay(_lookups(20), current, draft, share=0.25)
    assert result.scaled and result.share == 0.25
    assert result.estimate(result.stricter) == result.stricter * 4
    assert result.estimate(result.requests) == 80
    whole = replay(_lookups(20), current, draft)
    assert not whole.scaled and whole.estimate(whole.requests) == 20


@pytest.mark.parametrize("share", [0.0, -1.0, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        replay([], Policy(), Policy(), share=share)
