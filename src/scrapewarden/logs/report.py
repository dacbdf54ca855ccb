"""The analysis as a JSON document (``scrapewarden analyze --json``).

Shape (stable; new keys may be added)::

    {"lines", "bad_lines", "recovered_lines", "first_ts", "last_ts", "requests", "seconds",
     "verdicts": {"scraper": n, ...},   # addresses per verdict
     "actors": [{"ip": "..."} or {"addresses": [...], "kind": "campaign"|"network"|"user_agent"|"crawler",
                                  "key": ...},
                 "verdict", "score", "requests", "distinct_records", "reasons", "first_ts",
                 "last_ts", "user_agents"}],
     "records_exposed": [{"actor": "ip:…"|"campaign:…"|"network:…",
                          "records": [{"kind", "id", "first_ts", "last_ts", "requests"}]}]}

Every address not judged human appears exactly once, inside its campaign or network if it
belongs to one. Times are seconds since the epoch (UTC).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .analyzer import Actor, Analysis


def actor_json(actor: Actor) -> dict[str, Any]:
    head: dict[str, Any] = (
        {"ip": actor.key}
        if actor.kind == "ip"
        else {"kind": actor.kind, "key": actor.key, "addresses": actor.addresses}
    )
    return {
        **head,
        "id": actor.id,
        "verdict": actor.verdict,
        "score": actor.score,
        "requests": actor.requests,
        "distinct_records": actor.distinct_records,
        "reasons": actor.reasons,
        "first_ts": actor.first_ts,
        "last_ts": actor.last_ts,
        "user_agents": actor.user_agents,
    }


def to_json(analysis: Analysis) -> dict[str, Any]:
    stats = analysis.stats
    return {
        "lines": stats.lines,
        "bad_lines": stats.bad_lines,
        "recovered_lines": stats.recovered,
        "bad_examples": stats.bad_examples,
        "formats": stats.formats,
        "first_ts": analysis.first_ts,
        "last_ts": analysis.last_ts,
        "requests": analysis.requests,
        "seconds": round(analysis.seconds, 3),
        "verdicts": dict(Counter(v.verdict for v in analysis.addresses.values())),
        "actors": [actor_json(a) for a in analysis.actors],
        "records_exposed": analysis.records_exposed,
        "records_truncated": analysis.records_truncated,
    }
