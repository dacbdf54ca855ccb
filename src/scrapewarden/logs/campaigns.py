"""Campaigns: many addresses acting as one client (rotating-proxy scrapers).

A scraper behind a residential proxy pool sends a handful of requests from each of thousands of
addresses; no address, and often no network, shows anything. What it cannot rotate as easily is
its software and its job: one client signature (the user agent, the only part of it a log keeps),
requests for people's records and nothing else, no page assets, the ids of one walk spread over
many addresses, all at the same time.

So, per client signature, the *candidates* are the addresses that asked for records, fetched
fewer assets than pages (a browser on a first visit fetches several per page; one with a warm
cache none, and it then rarely asks only for records) and spent at least half of their page
requests on records. Together they form one actor, judged with the live engine's rules for a
client fingerprint: breadth against the fingerprint budgets, the enumeration test over their
interleaved requests, their combined rate, and the fleet test (pages without assets) over
*everyone* with that signature, as the live engine counts it: a popular browser build used by
many people keeps loading assets and stays clear.

Only a signature that carries far more candidates than its other users predict is considered
(see :func:`_outstanding`): on a busy site, people who happen to fetch records without assets add
up, per popular browser, to any breadth one cares to name, and must not become a "campaign".
A campaign needs at least ``MIN_ADDRESSES`` addresses; a smaller group is judged address by address.
On a site whose log shows no assets at all, only the enumeration test counts for a campaign.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.batch import ActorFeatures, actor_evidence
from ..core.decision import Evidence
from ..core.detectors.assets import fleet_from_counts
from ..core.policy import Policy
from .features import actor_features

MIN_ADDRESSES = 3
CANDIDATE = "(record_pages > 0 AND assets * 2 < pages AND record_pages * 2 >= pages)"
"""An address that asked for records, mostly records, and fetched few assets (a browser fetches
several per page on a first visit and, with a warm cache, still some of each page's images)."""
OUTSTANDING = 4.0
"""How many times the expected number of candidate addresses a user agent must carry."""
WELL_USED = 20
"""User agents with at least this many non-candidate addresses set the expected share."""
DEFAULT_ODDS = 0.5
"""Expected candidates per other address when no user agent is well used (tiny logs)."""
SYNC_MIN_MINUTES = 30
"""A group must be busy this many minutes before its timing says anything."""
BUSY_REQUESTS = 3
"""A busy minute: the group made at least this many requests in it. (Stray visits by people
who share a user agent with the group are single requests scattered over the day.)"""
SYNC_JACCARD = 0.5
"""Two such groups are one campaign when most of their busy minutes are shared."""


@dataclass
class Campaign:
    signature: str
    """The user agent most of its addresses use."""
    addresses: list[str]
    features: ActorFeatures
    evidence: list[Evidence] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)
    """Every user agent of the campaign (one, unless it rotates them in step)."""


def find(
    con: Any, policy: Policy, *, site_has_assets: bool, exclude: list[str] | None = None
) -> list[Campaign]:
    """Candidate groups with at least ``MIN_ADDRESSES`` addresses, each with its findings.

    Needs the ``ev`` table (:func:`.features.prepare`) and ``ipinfo`` (ip, sig: the address's
    main client signature, pages, assets, record_pages). ``exclude``: addresses never grouped
    (verified crawlers: they are who they say they are)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE campaign_exclude AS SELECT unnest(?::VARCHAR[]) AS ip", [exclude or []]
    )
    counts = con.execute(
        f"""
        SELECT sig, count(*) FILTER (WHERE {CANDIDATE}), count(*) FILTER (WHERE NOT {CANDIDATE})
        FROM ipinfo WHERE ip NOT IN (SELECT ip FROM campaign_exclude) GROUP BY sig
        """
    ).fetchall()
    outstanding = _outstanding({ua: (int(c), int(o)) for ua, c, o in counts})
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE cand AS
        SELECT ip, sig FROM ipinfo
        WHERE {CANDIDATE} AND ip NOT IN (SELECT ip FROM campaign_exclude)
          AND sig IN (SELECT unnest(?::VARCHAR[]))
        """,
        [outstanding],
    )
    by_sig: dict[str, list[str]] = {}
    for ip, sig in con.execute("SELECT ip, sig FROM cand ORDER BY sig, ip").fetchall():
        by_sig.setdefault(sig, []).append(ip)
    if not by_sig:
        return []
    campaign_of = _merge_synchronised(con)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cand_c AS SELECT cand.ip, cand.sig, m.cid FROM cand "
        "JOIN (SELECT unnest(?::VARCHAR[]) AS sig, unnest(?::VARCHAR[]) AS cid) m ON cand.sig = m.sig",
        [list(campaign_of), list(campaign_of.values())],
    )
    signatures: dict[str, list[str]] = {}
    for sig, cid in campaign_of.items():
        signatures.setdefault(cid, []).append(sig)
    # Everyone with the signature, as the live engine's fingerprint actor counts pages and assets.
    ua_totals = {
        ua: (int(p), int(a))
        for ua, p, a in con.execute(
            "SELECT sig, sum(pages), sum(assets) FROM ipinfo WHERE sig IN (SELECT sig FROM cand) GROUP BY sig"
        ).fetchall()
    }
    features = actor_features(
        con,
        "cid",
        "campaign",
        "(SELECT ev.*, cand_c.cid FROM ev JOIN cand_c ON ev.ip = cand_c.ip AND ev.sig = cand_c.sig)",
    )
    out: list[Campaign] = []
    for cid, sigs in signatures.items():
        f = features.get(cid)
        if f is None:
            continue
        addresses = sorted(ip for sig in sigs for ip in by_sig[sig])
        evidence = [
            e for e in actor_evidence(f, policy, site_has_assets=False) if e.detector != "client.no_assets"
        ]
        if site_has_assets:
            pages = sum(ua_totals.get(sig, (0, 0))[0] for sig in sigs)
            assets = sum(ua_totals.get(sig, (0, 0))[1] for sig in sigs)
            fleet = fleet_from_counts(pages, assets, policy.client.fleet_no_assets, "campaign")
            if fleet is not None:
                evidence.append(fleet)
        else:
            # A site whose log shows no assets (an API, assets on a CDN) cannot tell a scraper's
            # addresses from its users' by assets: everyone is a candidate, and the users of one
            # app or browser build would add up to a "campaign". Only the interleaved walk of
            # neighbouring ids, which users do not produce, still says "one client".
            evidence = [e for e in evidence if e.detector == "enumeration"]
        if len(sigs) > 1:
            evidence.append(
                Evidence(
                    "campaign.synchronised",
                    0.0,
                    f"{len(sigs)} user agents active in the same minutes",
                    "campaign",
                )
            )
        out.append(
            Campaign(sorted(sigs, key=lambda s: -len(by_sig[s]))[0], addresses, f, evidence, sorted(sigs))
        )
    return out


def _outstanding(counts: dict[str, tuple[int, int]]) -> list[str]:
    """User agents with far more candidate addresses than their other users predict.

    On any site some visitors fetch records without assets (warm caches, text browsers), about
    the same share of every user agent's visitors. A user agent whose candidates outnumber
    ``OUTSTANDING`` times what that share predicts from its other addresses is carrying
    something else: a client spread over many addresses. The share is the median over the
    *other* well-used user agents, so a campaign does not raise its own bar."""
    odds = {
        ua: c / o for ua, (c, o) in counts.items() if o >= WELL_USED and ua
    }  # candidates per other address
    ordered = sorted(odds.values())
    out = []
    for ua, (candidates, others) in counts.items():
        if candidates < MIN_ADDRESSES:
            continue
        if ua in odds:
            rest = list(ordered)
            rest.remove(odds[ua])
        else:
            rest = ordered
        share = rest[len(rest) // 2] if rest else DEFAULT_ODDS
        if candidates > OUTSTANDING * share * others:
            out.append(ua)
    return out


def _merge_synchronised(con: Any) -> dict[str, str]:
    """Signature -> campaign id. Groups busy in mostly the same minutes are one client that
    rotates its user agent too."""
    minutes: dict[str, set[int]] = {}
    for sig, mins in con.execute(
        f"""
        SELECT sig, list(m) FROM (
            SELECT cand.sig, floor(ev.ts / 60)::BIGINT AS m FROM ev JOIN cand
            ON ev.ip = cand.ip AND ev.sig = cand.sig GROUP BY ALL HAVING count(*) >= {BUSY_REQUESTS}
        ) GROUP BY sig
        """
    ).fetchall():
        minutes[sig] = set(mins)
    dense = [sig for sig, mins in minutes.items() if len(mins) >= SYNC_MIN_MINUTES]
    parent = {sig: sig for sig in minutes}
    for (sig,) in con.execute("SELECT DISTINCT sig FROM cand").fetchall():
        parent.setdefault(sig, sig)

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, a in enumerate(dense):
        for b in dense[i + 1 :]:
            ma, mb = minutes[a], minutes[b]
            if len(ma & mb) >= SYNC_JACCARD * len(ma | mb):
                parent[root(a)] = root(b)
    ids: dict[str, str] = {}
    out: dict[str, str] = {}
    for sig in sorted(parent):
        r = root(sig)
        out[sig] = ids.setdefault(r, f"c{len(ids) + 1}")
    return out
