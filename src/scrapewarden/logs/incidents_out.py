"""From a log analysis to incident findings (``scrapewarden analyze --open-incidents``).

Each reported actor that crosses the policy's ``[incidents]`` threshold (a scraper served at
least ``min_records`` protected records, or a campaign) becomes one
:class:`~scrapewarden.core.incidents.Detection`: its addresses and networks (pseudonymised the
way the live event trail does it, with the store's key, so a log finding joins the incident a
running door opened about the same scraper), user agents, the detectors that fired on its
members and why, its time window, and every record it was served, as far as the report lists
them (``records_count`` says how many there were in all).
"""

from __future__ import annotations

import secrets
from typing import Any

from ..core.incidents import MAX_ACTORS, Actors, Detection
from ..core.policy import Policy
from ..core.pseudonym import Pseudonymizer
from ..state.base import StateStore
from .analyzer import Actor, Analysis

KEY_SETTING = "privacy.pseudonym_key"


def pseudonymizer_for(policy: Policy, store: StateStore) -> Pseudonymizer:
    """The pseudonymiser a Warden on ``store`` uses: the policy's key, else the store's own
    (made on first use, as the Warden does), so pseudonyms match the live trail's."""
    fallback = None
    if policy.privacy.pseudonymize and not policy.privacy.key:
        key = store.get_setting(KEY_SETTING)
        if key is None:
            store.set_setting(KEY_SETTING, secrets.token_hex(32))
            store.flush()
            key = store.get_setting(KEY_SETTING)
        fallback = bytes.fromhex(key) if key else None
    return Pseudonymizer.from_policy(policy.privacy, fallback_key=fallback)


def qualifies(actor: Actor, policy: Policy, levels: tuple[str, ...] = ("scraper",)) -> bool:
    rules = policy.incidents
    if not rules.enabled or actor.verdict not in levels:
        return False
    if rules.on_campaign and actor.kind == "campaign":
        return True
    return rules.on_block and actor.distinct_records >= rules.min_records


def detections(
    analysis: Analysis,
    policy: Policy,
    pseudonymizer: Pseudonymizer,
    *,
    levels: tuple[str, ...] = ("scraper",),
) -> list[Detection]:
    """One finding per qualifying actor, strongest first (the report's order)."""
    records_of = {entry["actor"]: entry["records"] for entry in analysis.records_exposed}
    v4, v6 = policy.network.ipv4_network_prefix, policy.network.ipv6_network_prefix
    out = []
    for actor in analysis.actors:
        if not qualifies(actor, policy, levels):
            continue
        members = actor.addresses
        kept = members[:MAX_ACTORS]
        detectors: dict[str, list[str]] = {}
        for ip in members:
            verdict = analysis.addresses.get(ip)
            for ev in verdict.evidence if verdict else ():
                if ev.weight <= 0:
                    continue
                reasons = detectors.setdefault(ev.detector, [])
                if ev.reason not in reasons and len(reasons) < 5:
                    reasons.append(ev.reason)
        served: list[dict[str, Any]] = records_of.get(actor.id, [])
        out.append(
            Detection(
                ts=actor.last_ts,
                first_ts=actor.first_ts,
                source="analyze",
                verdict=actor.verdict,
                actors=Actors(
                    ips=[pseudonymizer.ip(ip) for ip in kept],
                    networks=sorted({pseudonymizer.network(ip, v4, v6) for ip in kept}),
                    user_agents=list(actor.user_agents),
                    more=len(members) - len(kept),
                ),
                campaign=f"campaign:{actor.key}" if actor.kind == "campaign" else "",
                detectors=detectors,
                records=[f"{r['kind']}:{r['id']}" for r in served],
                records_count=actor.distinct_records,
                requests=actor.requests,
                samples=[
                    {
                        "ts": r["first_ts"],
                        "last_ts": r["last_ts"],
                        "record": f"{r['kind']}:{r['id']}",
                        "requests": r["requests"],
                    }
                    for r in served[:5]
                ],
                score=actor.score,
            )
        )
    return out
