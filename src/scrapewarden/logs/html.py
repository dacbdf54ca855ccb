"""The analysis as one self-contained HTML page (``scrapewarden analyze --html``).

No scripts, no external files: inline CSS and SVG charts, so the page opens anywhere, can be
mailed, and cannot leak anything by loading resources. Everything that came from the log
(addresses, user agents, record ids, reasons quoting them) is HTML-escaped.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from html import escape

from .analyzer import Actor, Analysis

MAX_ACTORS = 200
MAX_RECORDS = 500
MAX_ADDRESSES = 300
_COLOURS = {"scraper": "#c0392b", "suspicious": "#e67e22", "verified_bot": "#2980b9", "human": "#27ae60"}

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:8px;padding:.6rem 1rem}
.card b{display:block;font-size:1.4rem}table{border-collapse:collapse;width:100%;font-size:13px}
td,th{border-bottom:1px solid #eee;padding:.3rem .4rem;text-align:left;vertical-align:top}
th{background:#f6f6f6}.num{text-align:right;white-space:nowrap}
.tag{padding:0 .4rem;border-radius:4px;color:#fff}
code{font-size:12px;word-break:break-all}details summary{cursor:pointer;color:#555}.muted{color:#777}
"""


def _t(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _tag(verdict: str) -> str:
    return f'<span class="tag" style="background:{_COLOURS.get(verdict, "#777")}">{escape(verdict)}</span>'


def _timeline_svg(analysis: Analysis) -> str:
    points = analysis.timeline
    if not points:
        return "<p class=muted>no traffic</p>"
    width, height, pad = 1100, 220, 30
    peak = max(n for _, n, _ in points) or 1
    bar = max(1.0, (width - pad) / len(points))
    parts = [
        f'<svg viewBox="0 0 {width} {height + 40}" width="100%" role="img" aria-label="requests over time">'
    ]
    for i, (_start, total, flagged) in enumerate(points):
        x = pad + i * bar
        h_total = (height - 10) * total / peak
        h_flag = (height - 10) * flagged / peak
        parts.append(
            f'<rect x="{x:.1f}" y="{height - h_total:.1f}" width="{bar * 0.9:.1f}" '
            f'height="{h_total:.1f}" fill="#bdc3c7"/>'
        )
        if flagged:
            parts.append(
                f'<rect x="{x:.1f}" y="{height - h_flag:.1f}" width="{bar * 0.9:.1f}" height="{h_flag:.1f}" '
                f'fill="{_COLOURS["scraper"]}"><title>{flagged:,} of {total:,} requests from '
                f"scrapers/suspicious at {escape(_t(_start))}</title></rect>"
            )
    parts.append(f'<text x="{pad}" y="{height + 20}" font-size="12">{escape(_t(points[0][0]))} UTC</text>')
    parts.append(
        f'<text x="{width}" y="{height + 20}" font-size="12" text-anchor="end">'
        f"{escape(_t(points[-1][0]))} UTC</text>"
    )
    parts.append(f'<text x="0" y="12" font-size="12">{peak:,}</text>')
    parts.append("</svg>")
    step = int(analysis.timeline_step // 60)
    parts.append(
        f"<p class=muted>Requests per {step} minute(s); "
        f'<span style="color:{_COLOURS["scraper"]}">red</span>: '
        "from addresses judged scraper or suspicious.</p>"
    )
    return "".join(parts)


def _verdict_bars(analysis: Analysis) -> str:
    counts = Counter(v.verdict for v in analysis.addresses.values())
    total = sum(counts.values()) or 1
    rows = []
    for verdict in ("scraper", "suspicious", "verified_bot", "human"):
        n = counts.get(verdict, 0)
        rows.append(
            f'<tr><td>{_tag(verdict)}</td><td class=num>{n:,}</td><td style="width:70%">'
            f'<svg viewBox="0 0 100 4" width="100%" height="12">'
            f'<rect width="{100 * n / total:.2f}" height="4" '
            f'fill="{_COLOURS[verdict]}"/></svg></td></tr>'
        )
    return "<table>" + "".join(rows) + "</table>"


def _actor_rows(actors: list[Actor]) -> str:
    rows = []
    for a in actors[:MAX_ACTORS]:
        key = escape(a.key)
        addresses = ""
        if a.kind != "ip":
            shown = ", ".join(escape(ip) for ip in a.addresses[:MAX_ADDRESSES])
            more = (
                f" … and {len(a.addresses) - MAX_ADDRESSES:,} more"
                if len(a.addresses) > MAX_ADDRESSES
                else ""
            )
            addresses = (
                f"<details><summary>{len(a.addresses):,} addresses</summary>"
                f"<code>{shown}{more}</code></details>"
            )
        uas = "<br>".join(f"<code>{escape(ua[:160])}</code>" for ua in a.user_agents)
        reasons = "<br>".join(escape(r) for r in a.reasons[:5])
        rows.append(
            f"<tr><td>{escape(a.kind)}<br><code>{key[:120]}</code>{addresses}</td><td>{_tag(a.verdict)}</td>"
            f"<td class=num>{a.score:.0f}</td><td class=num>{a.requests:,}</td>"
            f"<td class=num>{a.distinct_records:,}</td>"
            f"<td>{escape(_t(a.first_ts))}<br>{escape(_t(a.last_ts))}</td>"
            f"<td>{reasons}</td><td>{uas}</td></tr>"
        )
    return (
        "<table><tr><th>actor</th><th>verdict</th><th class=num>score</th><th class=num>requests</th>"
        "<th class=num>records</th><th>first / last (UTC)</th><th>why</th><th>user agents</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _records(analysis: Analysis) -> str:
    if not analysis.records_exposed:
        return "<p class=muted>No protected records were served to scrapers (or the policy names none).</p>"
    parts = []
    for entry in analysis.records_exposed:
        records = entry["records"]
        rows = "".join(
            f"<tr><td>{escape(str(r['kind']))}</td><td><code>{escape(str(r['id']))}</code></td>"
            f"<td>{escape(_t(r['first_ts']))}</td><td>{escape(_t(r['last_ts']))}</td>"
            f"<td class=num>{r['requests']:,}</td></tr>"
            for r in records[:MAX_RECORDS]
        )
        more = (
            f"<p class=muted>… {len(records) - MAX_RECORDS:,} more in the JSON report.</p>"
            if len(records) > MAX_RECORDS
            else ""
        )
        parts.append(
            f"<details><summary><code>{escape(entry['actor'][:120])}</code>: "
            f"{len(records):,} records</summary>"
            "<table><tr><th>kind</th><th>id</th><th>first served</th><th>last served</th>"
            f"<th class=num>requests</th></tr>{rows}</table>{more}</details>"
        )
    return "".join(parts)


def render_html(analysis: Analysis) -> str:
    stats = analysis.stats
    campaigns = [a for a in analysis.actors if a.kind == "campaign"]
    exposed = sum(len(e["records"]) for e in analysis.records_exposed)
    scrapers = sum(1 for a in analysis.actors if a.verdict == "scraper")
    cards = [
        ("lines", f"{stats.lines:,}"),
        ("unreadable lines", f"{stats.bad_lines:,}"),
        ("addresses", f"{len(analysis.addresses):,}"),
        ("scraper actors", f"{scrapers:,}"),
        ("campaigns", f"{len(campaigns):,}"),
        ("records exposed", f"{exposed:,}"),
    ]
    card_html = "".join(f'<div class="card">{escape(label)}<b>{value}</b></div>' for label, value in cards)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>scrapewarden: access log analysis</title><style>{_CSS}</style></head><body>
<h1>Were we scraped, and whose data left?</h1>
<p class=muted>{escape(_t(analysis.first_ts))} to {escape(_t(analysis.last_ts))} UTC ·
{len(stats.formats)} file(s) · analysed in {analysis.seconds:.1f}s</p>
<div class="cards">{card_html}</div>
<h2>Traffic over time</h2>{_timeline_svg(analysis)}
<h2>Addresses by verdict</h2>{_verdict_bars(analysis)}
<h2>Campaigns</h2>
<p class=muted>Many addresses acting as one client (rotating proxies): one user agent, records and no assets,
the same minutes.</p>
{_actor_rows(campaigns) if campaigns else "<p class=muted>none found</p>"}
<h2>Top actors not judged human</h2>{_actor_rows(analysis.actors)}
<h2>Records exposed</h2>
<p class=muted>Every protected record served (2xx/304) to each scraper or suspicious actor: the input for a
breach assessment.</p>{_records(analysis)}
</body></html>
"""
