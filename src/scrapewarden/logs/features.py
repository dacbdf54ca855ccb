"""Per-actor features in SQL: what each address, network, account or group did over the whole log.

:func:`prepare` adds the policy's view of every request (asset? which record? trap?) in one
pass; :func:`actor_features` then computes, for any grouping key, exactly the quantities the
live engine estimates in its sliding windows (see :class:`scrapewarden.core.batch.ActorFeatures`).

Windows: the live engine counts the last minute, hour and day. Here each is counted in fixed
buckets at two offsets (on the minute and half-way), and the larger count is kept, which comes
within a few per cent of the sliding maximum without a per-request window scan.
"""

from __future__ import annotations

from typing import Any

from ..core.batch import ActorFeatures, ActorKind
from ..core.counters import OrderTracker
from ..core.policy import Policy
from .sql_rules import allow_path_condition, asset_condition, record_columns, trap_condition

MAX_STEP = OrderTracker.MAX_STEP


def network_sql(v4_prefix: int) -> str:
    """SQL for an address's network when the IPv4 prefix is /24 (the default); other prefixes
    and IPv6 networks are filled in from Python (see :func:`fill_networks`)."""
    if v4_prefix == 24:
        return "CASE WHEN strpos(ip, ':') = 0 THEN regexp_replace(ip, '\\.[0-9]+$', '.0/24') END"
    return "NULL::VARCHAR"


def ev_columns(policy: Policy) -> str:
    """The columns every feature query needs, as select items over the reader's base columns:
    computed while the lines are parsed (see ``reader.load(derive=...)``)."""
    return (
        f"ip, {network_sql(policy.network.ipv4_network_prefix)} AS net, ts, ua, account, status, "
        # The client signature campaigns group by: the user agent, plus the fingerprint fields
        # when the log has them.
        "coalesce(ua || ' | ' || fp, ua) AS sig, "
        f"{asset_condition(policy)} AS is_asset, {trap_condition(policy)} AS is_trap, "
        f"{allow_path_condition(policy)} AS is_allowed_path, {record_columns(policy)}"
    )


def prepare(con: Any, policy: Policy) -> None:
    """Make ``ev`` (the reader's ``requests`` table loaded with :func:`ev_columns`) complete."""
    con.execute("CREATE OR REPLACE TEMP VIEW ev AS SELECT * FROM requests")
    fill_networks(con, policy)


def fill_networks(con: Any, policy: Policy) -> None:
    """Networks SQL could not compute (IPv6, unusual prefixes), with the core's ``network_of``."""
    from ..core.fingerprint import network_of

    missing = [r[0] for r in con.execute("SELECT DISTINCT ip FROM ev WHERE net IS NULL").fetchall()]
    if not missing:
        return
    v4, v6 = policy.network.ipv4_network_prefix, policy.network.ipv6_network_prefix
    con.execute(
        "CREATE OR REPLACE TEMP TABLE netmap AS "
        "SELECT unnest(?::VARCHAR[]) AS ip, unnest(?::VARCHAR[]) AS net",
        [missing, [network_of(ip, v4, v6) for ip in missing]],
    )
    con.execute(
        "UPDATE requests SET net = netmap.net FROM netmap "
        "WHERE requests.net IS NULL AND requests.ip = netmap.ip"
    )
    con.execute("DROP TABLE netmap")


def actor_features(
    con: Any, key: str, kind: ActorKind, source: str = "ev", ban_window: float | None = None
) -> dict[str, ActorFeatures]:
    """Features per value of the SQL expression ``key`` over the rows of ``source``.

    ``source`` must have the columns of ``ev`` (it may be a filtered view of it)."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW fsrc AS SELECT {key} AS k, * FROM {source}")
    base = con.execute(
        """
        SELECT k, count(*), count(*) FILTER (WHERE NOT is_asset), count(*) FILTER (WHERE is_asset),
               count(*) FILTER (WHERE is_trap)
        FROM fsrc WHERE k IS NOT NULL AND NOT is_allowed_path GROUP BY k
        """
    ).fetchall()
    peak_minute = _peak(con, "count(*)", 60.0, "WHERE NOT is_allowed_path")
    peak_ban = _peak(con, "count(*)", ban_window, "WHERE NOT is_allowed_path") if ban_window else {}
    con.execute(
        # One row per record request; rh identifies the record as a number (cheap to count
        # distinct). Repeats of one record need no removal: the counts below are distinct and
        # the order test skips a record asked for twice in a row, as the live tracker does.
        "CREATE OR REPLACE TEMP TABLE frec AS "
        "SELECT k, rkind, rid, hash(rkind, rid) AS rh, rfactor, ts FROM fsrc "
        "WHERE k IS NOT NULL AND rid IS NOT NULL"
    )
    peak_hour = _peak_records(con, 3600.0)
    peak_day = _peak_records(con, 86400.0)
    order = _order(con)
    con.execute("DROP TABLE frec")
    con.execute("DROP VIEW fsrc")
    out: dict[str, ActorFeatures] = {}
    for k, requests, pages, assets, traps in base:
        pairs, steps, ascending = order.get(k, (0, 0.0, 0.0))
        out[k] = ActorFeatures(
            kind=kind,
            requests=int(requests),
            pages=int(pages),
            assets=int(assets),
            peak_per_minute=float(peak_minute.get(k, 0.0)),
            peak_records_hour=float(peak_hour.get(k, 0.0)),
            peak_records_day=float(peak_day.get(k, 0.0)),
            order_pairs=int(pairs),
            step_fraction=float(steps),
            ascending_fraction=float(ascending),
            trap_hits=int(traps),
            peak_ban_window=float(peak_ban.get(k, 0.0)),
        )
    return out


def _peak(con: Any, measure: str, seconds: float, where: str) -> dict[str, float]:
    half = seconds / 2
    rows = con.execute(
        f"""
        SELECT k, max(n) FROM (
            SELECT k, floor(ts / {seconds}) AS b, {measure} AS n FROM fsrc {where}
                AND k IS NOT NULL GROUP BY ALL
            UNION ALL
            SELECT k, floor((ts + {half}) / {seconds}) AS b, {measure} AS n FROM fsrc {where}
                AND k IS NOT NULL GROUP BY ALL
        ) GROUP BY k
        """
    ).fetchall()
    return {k: float(n) for k, n in rows}


def _peak_records(con: Any, seconds: float) -> dict[str, float]:
    """Most distinct records (sensitivity-weighted) in one window of ``seconds``."""
    half = seconds / 2
    rows = con.execute(
        f"""
        SELECT k, max(w) FROM (
            SELECT k, b, sum(rfactor) AS w FROM (
                SELECT DISTINCT k, floor(ts / {seconds}) AS b, rh, rfactor FROM frec
                UNION ALL
                SELECT DISTINCT k, floor((ts + {half}) / {seconds}) + 0.5 AS b, rh, rfactor FROM frec
            ) GROUP BY k, b
        ) GROUP BY k
        """
    ).fetchall()
    return {k: float(w) for k, w in rows}


def _order(con: Any) -> dict[str, tuple[int, float, float]]:
    """Share of neighbouring ids and of ascending pairs among consecutive record requests
    (same kind, different record), as :class:`OrderTracker` classifies them."""
    rows = con.execute(
        f"""
        WITH seq AS (
            SELECT k, rkind, rid,
                lag(rkind) OVER w AS pkind, lag(rid) OVER w AS prid,
                try_cast(rid AS BIGINT) AS num, lag(try_cast(rid AS BIGINT)) OVER w AS pnum
            FROM frec WINDOW w AS (PARTITION BY k ORDER BY ts, rid)
        )
        SELECT k, count(*),
            avg(CASE WHEN num IS NOT NULL AND pnum IS NOT NULL AND abs(num - pnum) <= {MAX_STEP}
                     THEN 1.0 ELSE 0.0 END),
            avg(CASE WHEN num IS NOT NULL AND pnum IS NOT NULL THEN (num > pnum)::INT
                     ELSE (rid > prid)::INT END)
        FROM seq WHERE pkind = rkind AND prid <> rid GROUP BY k
        """
    ).fetchall()
    return {k: (int(n), float(s), float(a)) for k, n, s, a in rows}
