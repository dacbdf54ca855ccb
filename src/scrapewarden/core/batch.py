"""Judging an actor from its whole history at once (the log analyzer), with the live engine's rules.

The live engine counts request by request in sliding windows; a log analysis sees everything and
computes the same quantities exactly, in bulk (peak requests per minute, peak distinct records
per hour and per day, the share of neighbouring record ids, pages against assets, trap visits).
The findings come from the same detector functions, so their names, weights and thresholds are
the policy's and the live engine's: one definition of "scraper" for both.

Pure: numbers in, evidence and a verdict out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .decision import Evidence
from .detectors.assets import MIN_PAGES, fleet_from_counts, no_assets_from_counts
from .detectors.budgets import breadth_from_counts, rate_evidence
from .detectors.enumeration import MIN_PAIRS, enumeration_from_fractions
from .policy import ActorLimits, Policy, Thresholds
from .scoring import LIMIT_WARN_RATIO, combine

Verdict = Literal["scraper", "suspicious", "human", "verified_bot"]
ActorKind = Literal["ip", "network", "account", "fingerprint", "campaign"]


@dataclass(frozen=True, slots=True)
class ActorFeatures:
    """What one actor did over the whole log."""

    kind: ActorKind
    requests: int = 0
    pages: int = 0
    assets: int = 0
    peak_per_minute: float = 0.0
    peak_records_hour: float = 0.0
    """Most distinct protected records in one hour, weighted by sensitivity (normal = 1)."""
    peak_records_day: float = 0.0
    order_pairs: int = 0
    step_fraction: float = 0.0
    ascending_fraction: float = 0.0
    trap_hits: int = 0
    peak_ban_window: float = 0.0
    """Most requests in one ``actions.bans.window_seconds`` window."""


def limits_for(kind: ActorKind, policy: Policy) -> ActorLimits:
    """The policy's budgets for an actor kind. A campaign is one client build spread over many
    addresses: the live engine's fingerprint actor, so it has the fingerprint's budgets."""
    limits = policy.limits
    return {
        "ip": limits.per_ip,
        "network": limits.per_network,
        "account": limits.per_account,
        "fingerprint": limits.per_fingerprint,
        "campaign": limits.per_fingerprint,
    }[kind]


def actor_evidence(features: ActorFeatures, policy: Policy, *, site_has_assets: bool) -> list[Evidence]:
    """The behavioural findings about one actor (rate, breadth, enumeration, assets, traps).

    ``site_has_assets``: the site served assets at all; otherwise their absence means nothing
    (the live engine's ``SITE_ASSETS_MIN`` rule).
    """
    f = features
    kind = f.kind
    limits = limits_for(kind, policy)
    found: list[Evidence | None] = [
        rate_evidence(kind, f.peak_per_minute, limits),
        breadth_from_counts(kind, f.peak_records_hour, f.peak_records_day, limits),
        enumeration_from_fractions(kind, f.order_pairs, f.step_fraction, f.ascending_fraction),
    ]
    if site_has_assets:
        if kind == "campaign":
            found.append(fleet_from_counts(f.pages, f.assets, policy.client.fleet_no_assets, "campaign"))
        else:
            found.append(no_assets_from_counts(kind, f.pages, f.assets, policy.client.no_assets))
    if f.trap_hits and kind == "ip":
        reason = f"requested a trap path {f.trap_hits} time(s)"
        found.append(Evidence("trap", policy.traps.weight, reason, "ip"))
    return [e for e in found if e is not None]


def quiet_filter(policy: Policy) -> Callable[[ActorFeatures], bool]:
    """A cheap test for "this address's behaviour may yield a finding": most addresses in a log
    are far below every threshold, and skipping :func:`actor_evidence` for them is most of the
    analysis's speed on the Python side. It is conservative: whatever it lets through is judged
    in full, and nothing it stops could have produced evidence."""
    limits = policy.limits.per_ip
    rate = LIMIT_WARN_RATIO * limits.requests_per_minute
    hour = LIMIT_WARN_RATIO * limits.profiles_per_hour
    day = LIMIT_WARN_RATIO * limits.profiles_per_day

    def may_matter(f: ActorFeatures) -> bool:
        return (
            f.peak_per_minute >= rate
            or f.peak_records_hour >= hour
            or f.peak_records_day >= day
            or f.order_pairs >= MIN_PAIRS
            or f.pages >= MIN_PAGES
            or f.trap_hits > 0
        )

    return may_matter


def ban_evidence(features: ActorFeatures, score: float, policy: Policy) -> Evidence | None:
    """The live engine's automatic ban, replayed: an actor judged at the challenge level or above
    on every request, that sent ``blocks_before_ban`` requests within ``window_seconds``, was
    banned live (statement: repeated blocks turn into bans). Only for the scopes the policy bans."""
    bans = policy.actions.bans
    if (
        not bans.enabled
        or features.kind not in bans.scopes
        or score < policy.thresholds.challenge
        or features.peak_ban_window < bans.blocks_before_ban
    ):
        return None
    return Evidence(
        "ban",
        100.0,
        f"would have been banned: {features.peak_ban_window:.0f} challenged requests within "
        f"{bans.window_seconds}s (ban after {bans.blocks_before_ban})",
        features.kind,
    )


def strongest(evidence: list[Evidence]) -> list[Evidence]:
    """The strongest finding per detector, strongest first: one behaviour seen through several
    actors (address, network, campaign) is one finding, as in the live engine."""
    best: dict[str, Evidence] = {}
    for item in evidence:
        current = best.get(item.detector)
        if current is None or item.weight > current.weight:
            best[item.detector] = item
    return sorted(best.values(), key=lambda e: -e.weight)


def verdict_for(score: float, thresholds: Thresholds, *, verified_bot: bool = False) -> Verdict:
    """Score -> verdict, on the live engine's ladder: what it would block is a scraper, what it
    would throttle or challenge is suspicious."""
    if verified_bot:
        return "verified_bot"
    if score >= thresholds.block:
        return "scraper"
    if score >= thresholds.throttle:
        return "suspicious"
    return "human"


def judge(
    evidence: list[Evidence], thresholds: Thresholds, *, verified_bot: bool = False
) -> tuple[float, Verdict, list[Evidence]]:
    """Combine findings as the live engine does: (score, verdict, findings kept)."""
    kept = strongest(evidence)
    score = 0.0 if verified_bot else combine(kept)
    return score, verdict_for(score, thresholds, verified_bot=verified_bot), kept
