"""New-account velocity (statement R4): how fast a young account starts looking people up.

People who just signed up look up a handful of friends; a scraping account made minutes ago
looks up dozens per minute. The younger the account, the more a fast start weighs.
"""

from __future__ import annotations

from ..counters import ActorCounts
from ..decision import Evidence
from ..policy import NewAccountPolicy
from ..scoring import limit_weight

AGE_GROWTH = 2.0
"""How much the young-account budgets grow (as a multiple) over ``young_hours``."""


def new_account_evidence(
    state: ActorCounts, account_age_seconds: float, policy: NewAccountPolicy
) -> Evidence | None:
    young_seconds = policy.young_hours * 3600.0
    if account_age_seconds >= young_seconds:
        return None
    youth = 1.0 - max(0.0, account_age_seconds) / young_seconds  # 1 at sign-up, 0 when grown up
    # The budgets grow with the account: the policy's figures hold at sign-up and triple by the
    # time the account stops being young, meeting the ordinary per-account budgets.
    allowance = 1.0 + AGE_GROWTH * (1.0 - youth)
    minute_ratio = state.seen_minute / (policy.lookups_per_minute * allowance)
    hour_ratio = state.seen_hour / (policy.lookups_per_hour * allowance)
    ratio = max(minute_ratio, hour_ratio)
    weight = limit_weight(ratio)
    if not weight:
        return None
    weight = min(100.0, weight * (1.0 + 0.5 * youth))
    age_minutes = max(0.0, account_age_seconds) / 60.0
    window, seen = ("minute", state.seen_minute) if minute_ratio >= hour_ratio else ("hour", state.seen_hour)
    return Evidence(
        "new_account",
        weight,
        f"account {age_minutes:.0f} min old looked up {seen:.0f} records in the last {window}",
        "account",
    )
