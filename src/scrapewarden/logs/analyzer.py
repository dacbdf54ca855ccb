"""The whole log analysis: files in, actors with verdicts and the records they took out.

Order of business (each step one SQL pass or one loop over distinct values, never over lines):

1. read the logs into DuckDB (:mod:`.reader`);
2. classify every request with the policy (asset, record, trap) and compute per-actor features
   for addresses, networks (with two or more addresses) and accounts (:mod:`.features`);
3. judge each distinct user agent once with the live engine's client checks, and each distinct
   address once with its reputation checks and crawler verification;
4. find campaigns (:mod:`.campaigns`);
5. per address, combine its own findings with those of its network, its account and its
   campaign, keeping the strongest per detector, exactly as the live engine combines them;
6. list the records each non-human actor was served, with first and last time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.batch import ActorFeatures, Verdict, actor_evidence, ban_evidence, judge, quiet_filter
from ..core.decision import Evidence
from ..core.engine import SITE_ASSETS_MIN
from ..core.facts import RequestFacts
from ..core.policy import Policy
from . import campaigns as campaign_finder
from .features import actor_features, ev_columns, prepare
from .reader import ReadStats, connect, load

TOP_UAS = 3
UA_DETECTORS = frozenset(
    {"client.bot_ua", "client.ai_crawler", "client.headless", "client.empty_ua", "client.deny_ua"}
)
"""Findings from the user agent alone: addresses flagged by them are grouped by user agent."""
SERVED = "(status IS NULL OR status BETWEEN 200 AND 299 OR status = 304)"
"""Responses that handed the record out (redirects, 4xx and 5xx did not)."""


@dataclass
class Actor:
    """One reported actor: an address, or a group of addresses judged as one."""

    kind: str
    """ip, network, campaign, user_agent (a declared bot on several addresses) or crawler (a
    verified crawler's addresses)."""
    key: str
    addresses: list[str]
    verdict: Verdict
    score: float
    requests: int
    distinct_records: int
    reasons: list[str]
    first_ts: float
    last_ts: float
    user_agents: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass
class AddressVerdict:
    verdict: Verdict
    score: float
    evidence: list[Evidence]
    group: str = ""
    """Id of the campaign/network/account actor this address is reported in, '' if alone."""


@dataclass
class Analysis:
    stats: ReadStats
    first_ts: float | None
    last_ts: float | None
    actors: list[Actor]
    """Every actor not judged human, strongest first."""
    addresses: dict[str, AddressVerdict]
    """Every address in the log with its verdict."""
    records_exposed: list[dict[str, Any]]
    records_truncated: bool
    """True when the report lists only the first ``MAX_REPORTED_RECORDS`` (see ``records_csv``)."""
    timeline: list[tuple[float, int, int]]
    """(bucket start, requests, requests by non-human addresses)."""
    timeline_step: float
    seconds: float
    requests: int


def _ip_info(con: Any) -> None:
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE ipinfo AS
        SELECT ip, any_value(net) AS net, mode(ua) AS ua, mode(sig) AS sig,
            count(*) FILTER (WHERE NOT is_asset) AS pages, count(*) FILTER (WHERE is_asset) AS assets,
            count(*) FILTER (WHERE rid IS NOT NULL) AS record_pages,
            min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS requests,
            count(DISTINCT hash(rkind, rid)) FILTER (WHERE rid IS NOT NULL) AS records
        FROM ev GROUP BY ip
        """
    )


class _Judge:
    """Per-UA and per-address checks from the live engine's detectors, cached by value."""

    def __init__(self, policy: Policy) -> None:
        from ..lists import client_sanity, ip_reputation

        self.policy = policy
        self.client = client_sanity(policy)
        self.reputation = ip_reputation(policy)
        self._ua: dict[str, tuple[list[Evidence], str | None]] = {}

    def ua(self, ua: str) -> tuple[list[Evidence], str | None]:
        found = self._ua.get(ua)
        if found is None:
            # No headers in a log line: only what the user agent itself says.
            facts = RequestFacts(now=0.0, ip="0.0.0.0", user_agent=ua)
            claimed = self.client.claimed_bot(ua) if self.policy.allow.verified_bots else None
            found = self._ua[ua] = (self.client.check(facts), claimed)
        return found

    def address(self, ip: str, claimed: str | None) -> tuple[list[Evidence], bool | None]:
        """(reputation findings, crawler verification: True verified, False impostor, None n/a)."""
        rep = self.reputation
        evidence = list(rep.check(ip))
        if rep.denied(ip):
            evidence.append(Evidence("deny", 100.0, "address on the deny list", "ip"))
        verified: bool | None = None
        if claimed is not None:
            if rep.in_crawler_range(ip, claimed):
                verified = True
            elif rep.publishes_ranges(claimed):
                verified = False
                evidence.append(
                    Evidence(
                        "client.spoofed_crawler",
                        70.0,
                        f"claims to be {claimed} from an address that is not",
                        "ip",
                    )
                )
        return evidence, verified


def analyze(
    paths: Sequence[str | Path],
    policy: Policy | None = None,
    *,
    fmt: str = "auto",
    memory_limit: str = "1GB",
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
    con: Any = None,
    records_csv: Path | None = None,
) -> Analysis:
    """Analyse access logs. Raises ValueError/FileNotFoundError for unusable input files."""
    policy = policy or Policy()
    started = time.perf_counter()
    say = progress or (lambda _step: None)
    con = con or connect(memory_limit, threads)
    stats = load(con, paths, fmt, derive=ev_columns(policy), progress=say)
    say("classifying requests")
    prepare(con, policy)
    _ip_info(con)
    requests, first_ts, last_ts, site_assets = con.execute(
        "SELECT count(*), min(ts), max(ts), count(*) FILTER (WHERE is_asset) FROM ev"
    ).fetchone()
    site_has_assets = int(site_assets) >= SITE_ASSETS_MIN

    say("computing actor features")
    ban_window = float(policy.actions.bans.window_seconds)
    ip_features = actor_features(con, "ip", "ip", ban_window=ban_window)
    shared_nets = (
        "(SELECT * FROM ev WHERE net IN (SELECT net FROM ev GROUP BY net HAVING count(DISTINCT ip) >= 2))"
    )
    net_features = actor_features(con, "net", "network", shared_nets)
    has_accounts = con.execute("SELECT count(*) FROM ev WHERE account IS NOT NULL").fetchone()[0] > 0
    account_features = actor_features(con, "account", "account") if has_accounts else {}

    say("judging actors")
    net_evidence = {
        k: actor_evidence(f, policy, site_has_assets=site_has_assets) for k, f in net_features.items()
    }
    acct_evidence = {
        k: actor_evidence(f, policy, site_has_assets=site_has_assets) for k, f in account_features.items()
    }
    judge_ = _Judge(policy)
    info = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT ip, net, ua, first_ts, last_ts, requests, records, pages, assets FROM ipinfo"
        ).fetchall()
    }
    # Address checks once per address (list look-ups), user-agent checks once per user agent.
    checked = {ip: judge_.address(ip, judge_.ua(row[1] or "")[1]) for ip, row in info.items()}
    verified_ips = [ip for ip, (_, verified) in checked.items() if verified]
    found_campaigns = campaign_finder.find(con, policy, site_has_assets=site_has_assets, exclude=verified_ips)
    campaign_of: dict[str, campaign_finder.Campaign] = {}
    for campaign in found_campaigns:
        for ip in campaign.addresses:
            campaign_of[ip] = campaign
    ip_accounts: dict[str, list[str]] = {}
    if has_accounts:
        for ip, account in con.execute(
            "SELECT DISTINCT ip, account FROM ev WHERE account IS NOT NULL"
        ).fetchall():
            ip_accounts.setdefault(ip, []).append(account)

    thresholds = policy.thresholds
    may_matter = quiet_filter(policy)
    addresses: dict[str, AddressVerdict] = {}
    for ip, (net, ua, _first, _last, _n, _records, pages, assets) in info.items():
        ua_evidence, claimed = judge_.ua(ua or "")
        rep_evidence, verified = checked[ip]
        features = ip_features.get(ip) or ActorFeatures("ip")
        evidence = [
            *(
                actor_evidence(features, policy, site_has_assets=site_has_assets)
                if may_matter(features)
                else ()
            ),
            *ua_evidence,
            *rep_evidence,
        ]
        # What a network or a campaign did is held against the addresses that took part in it:
        # those that do not load pages like a browser (assets with their pages). A person who
        # merely shares a network or a browser build with a scraper keeps their own verdict.
        browser_like = pages > 0 and assets * 2 >= pages
        if not browser_like:
            evidence.extend(net_evidence.get(net, ()))
        for account in ip_accounts.get(ip, ()):
            evidence.extend(acct_evidence.get(account, ()))
        in_campaign = campaign_of.get(ip)
        if in_campaign is not None:
            evidence.extend(in_campaign.evidence)
        score, verdict, kept = judge(evidence, thresholds, verified_bot=bool(verified))
        banned = None if verified else ban_evidence(features, score, policy)
        if banned is not None:
            score, verdict, kept = judge([*kept, banned], thresholds)
        if verified:
            kept = [
                Evidence("verified_bot", 0.0, f"verified crawler {claimed} (address in its published ranges)")
            ]
        if judge_.reputation.allowed(ip):
            score, verdict, kept = 0.0, "human", [Evidence("allow", 0.0, "on the allow list")]
        addresses[ip] = AddressVerdict(verdict, score, kept)

    say("grouping actors")
    actors = _group(con, addresses, found_campaigns, net_evidence, info, policy)
    say("listing exposed records")
    records, truncated = _records_exposed(con, actors, records_csv if policy.protected else None)
    if records_csv is not None and not policy.protected:
        records_csv.write_text(RECORDS_CSV_HEADER)  # no protected records named: none exposed
    timeline, step = _timeline(con, addresses, first_ts, last_ts)
    return Analysis(
        stats=stats,
        first_ts=first_ts,
        last_ts=last_ts,
        actors=actors,
        addresses=addresses,
        records_exposed=records,
        records_truncated=truncated,
        timeline=timeline,
        timeline_step=step,
        seconds=time.perf_counter() - started,
        requests=int(requests),
    )


def _group(
    con: Any,
    addresses: dict[str, AddressVerdict],
    found_campaigns: list[campaign_finder.Campaign],
    net_evidence: dict[str, list[Evidence]],
    info: dict[str, tuple[Any, ...]],
    policy: Policy,
) -> list[Actor]:
    """Report each non-human address once: inside its campaign, else inside its network when the
    network itself was judged, else with the other addresses of its declared bot or verified
    crawler user agent, else alone. Verified crawlers are reported (not hidden)."""
    thresholds = policy.thresholds
    flagged = {ip for ip, v in addresses.items() if v.verdict != "human"}
    groups: list[tuple[str, str, list[str], float, Verdict, list[Evidence]]] = []
    placed: set[str] = set()
    for campaign in found_campaigns:
        members = [
            ip for ip in campaign.addresses if ip in flagged and addresses[ip].verdict != "verified_bot"
        ]
        if len(members) < campaign_finder.MIN_ADDRESSES:
            continue
        score, verdict, kept = judge(campaign.evidence, thresholds)
        if verdict == "human":
            continue
        best = max(members, key=lambda ip: addresses[ip].score)
        # The group's verdict is its strongest member's: the members' own findings plus the campaign's.
        groups.append(
            ("campaign", campaign.signature, members, addresses[best].score, addresses[best].verdict, kept)
        )
        placed.update(members)
    by_net: dict[str, list[str]] = {}
    for ip in flagged:
        by_net.setdefault(info[ip][0], []).append(ip)
    for net, evidence in net_evidence.items():
        score, verdict, kept = judge(evidence, thresholds)
        if verdict == "human":
            continue
        members = sorted(ip for ip in by_net.get(net, ()) if ip not in placed)
        members = [ip for ip in members if addresses[ip].verdict != "verified_bot"]
        if len(members) < 2:
            continue
        best = max(members, key=lambda ip: addresses[ip].score)
        groups.append(("network", net, members, addresses[best].score, addresses[best].verdict, kept))
        placed.update(members)
    # Declared bots and verified crawlers spread over many addresses: one actor per user agent
    # (and verdict), judged by what the user agent says about itself.
    by_ua: dict[tuple[str, Verdict], list[str]] = {}
    for ip in sorted(flagged - placed):
        v = addresses[ip]
        if v.verdict == "verified_bot" or any(e.detector in UA_DETECTORS for e in v.evidence):
            by_ua.setdefault((info[ip][1] or "", v.verdict), []).append(ip)
    verdicts_per_ua: dict[str, int] = {}
    for ua, _verdict in by_ua:
        verdicts_per_ua[ua] = verdicts_per_ua.get(ua, 0) + 1
    for (ua, verdict), members in by_ua.items():
        if len(members) < 2:
            continue
        kind = "crawler" if verdict == "verified_bot" else "user_agent"
        key = ua if verdicts_per_ua[ua] == 1 or kind == "crawler" else f"{ua} ({verdict})"
        best = max(members, key=lambda ip: addresses[ip].score)
        groups.append((kind, key, members, addresses[best].score, verdict, addresses[best].evidence))
        placed.update(members)
    for ip in sorted(flagged - placed):
        v = addresses[ip]
        groups.append(("ip", ip, [ip], v.score, v.verdict, v.evidence))

    pairs = [(f"{kind}:{key}", ip) for kind, key, members, *_ in groups for ip in members]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE actor_members AS "
        "SELECT unnest(?::VARCHAR[]) AS actor, unnest(?::VARCHAR[]) AS ip",
        [[a for a, _ in pairs], [ip for _, ip in pairs]],
    )
    totals = {
        r[0]: r[1:]
        for r in con.execute(
            f"""
            SELECT m.actor, count(*),
                   count(DISTINCT hash(ev.rkind, ev.rid)) FILTER (WHERE ev.rid IS NOT NULL AND {SERVED}),
                   min(ev.ts), max(ev.ts)
            FROM actor_members m JOIN ev ON ev.ip = m.ip GROUP BY m.actor
            """
        ).fetchall()
    }
    uas: dict[str, list[str]] = {}
    for actor, ua, _n in con.execute(
        """
        SELECT actor, ua, n FROM (
            SELECT m.actor, ev.ua, count(*) AS n,
                   row_number() OVER (PARTITION BY m.actor ORDER BY count(*) DESC, ev.ua) AS r
            FROM actor_members m JOIN ev ON ev.ip = m.ip GROUP BY m.actor, ev.ua
        ) WHERE r <= ? ORDER BY actor, n DESC
        """,
        [TOP_UAS],
    ).fetchall():
        uas.setdefault(actor, []).append(ua)
    actors: list[Actor] = []
    for kind, key, members, score, verdict, evidence in groups:
        actor_id = f"{kind}:{key}"
        n, records, first, last = totals.get(actor_id, (0, 0, 0.0, 0.0))
        reasons = [e.reason for e in evidence]
        if kind != "ip":
            # The strongest member's own findings say why the group is more than its parts.
            for e in addresses[max(members, key=lambda ip: addresses[ip].score)].evidence:
                if e.reason not in reasons:
                    reasons.append(e.reason)
        actors.append(
            Actor(
                kind=kind,
                key=key,
                addresses=sorted(members),
                verdict=verdict,
                score=score,
                requests=int(n),
                distinct_records=int(records),
                reasons=reasons,
                first_ts=float(first),
                last_ts=float(last),
                user_agents=uas.get(actor_id, []),
            )
        )
        for ip in members:
            if kind != "ip":
                addresses[ip].group = actor_id
    order = {"scraper": 0, "suspicious": 1, "verified_bot": 2, "human": 3}
    actors.sort(key=lambda a: (order[a.verdict], -a.score, -a.distinct_records, -a.requests, a.id))
    return actors


RECORDS_CSV_HEADER = "actor,kind,id,first_ts,last_ts,requests\n"
MAX_REPORTED_RECORDS = 250_000
"""Records listed in the report (JSON/HTML) at most; ``records_csv`` always has all of them."""


def _exposed_query(wanted: list[str]) -> tuple[str, list[Any]]:
    return (
        f"""
        SELECT m.actor, ev.rkind AS kind, ev.rid AS id, min(ev.ts) AS first_ts, max(ev.ts) AS last_ts,
               count(*) AS requests
        FROM actor_members m JOIN ev ON ev.ip = m.ip
        WHERE ev.rid IS NOT NULL AND {SERVED} AND m.actor IN (SELECT unnest(?::VARCHAR[]))
        GROUP BY ALL ORDER BY m.actor, min(ev.ts), ev.rkind, ev.rid
        """,
        [wanted],
    )


def _records_exposed(
    con: Any, actors: list[Actor], records_csv: Path | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """Per scraper or suspicious actor, every record it was served, with first and last time.

    Returns (the list, whether it was cut at ``MAX_REPORTED_RECORDS``). With ``records_csv`` the
    full list is also written there by DuckDB, in bounded memory, however long it is."""
    wanted = [a.id for a in actors if a.verdict in ("scraper", "suspicious") and a.distinct_records]
    if not wanted:
        if records_csv is not None:
            records_csv.write_text(RECORDS_CSV_HEADER)
        return [], False
    sql, params = _exposed_query(wanted)
    if records_csv is not None:
        con.execute(f"COPY ({sql}) TO '{str(records_csv).replace(chr(39), chr(39) * 2)}' (HEADER)", params)
    cursor = con.execute(sql, params)
    by_actor: dict[str, list[dict[str, Any]]] = {}
    taken = 0
    truncated = False
    while True:
        rows = cursor.fetchmany(10_000)
        if not rows:
            break
        for actor, kind, rid, first, last, n in rows:
            if taken >= MAX_REPORTED_RECORDS:
                truncated = True
                break
            by_actor.setdefault(actor, []).append(
                {"kind": kind, "id": rid, "first_ts": first, "last_ts": last, "requests": int(n)}
            )
            taken += 1
        if truncated:
            break
    return [{"actor": a, "records": by_actor[a]} for a in wanted if a in by_actor], truncated


def _timeline(
    con: Any, addresses: dict[str, AddressVerdict], first: float | None, last: float | None
) -> tuple[list[tuple[float, int, int]], float]:
    """Requests over time in about 200 buckets, and how many came from non-human addresses."""
    if first is None or last is None:
        return [], 0.0
    span = max(60.0, float(last) - float(first))
    step = max(60.0, round(span / 200.0 / 60.0) * 60.0)
    flagged = [ip for ip, v in addresses.items() if v.verdict in ("scraper", "suspicious")]
    con.execute("CREATE OR REPLACE TEMP TABLE flagged_ips AS SELECT unnest(?::VARCHAR[]) AS ip", [flagged])
    rows = con.execute(
        f"""
        SELECT floor(ts / {step}) * {step} AS b, count(*), count(f.ip)
        FROM ev LEFT JOIN flagged_ips f ON ev.ip = f.ip GROUP BY b ORDER BY b
        """
    ).fetchall()
    return [(float(b), int(n), int(s)) for b, n, s in rows], step
