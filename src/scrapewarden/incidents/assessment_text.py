"""The breach assessment in words, line by line: what ``scrapewarden incidents assess`` prints
and what the dashboard's Incidents page shows, from the same function.

Lines hold values from the people lookup and the officer's note; callers make them safe for
where they go (the CLI makes control characters visible, the page's template escapes them).
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..core.breach import NOT_LEGAL_ADVICE, Assessment, format_utc
from ..core.incidents import RiskJudgement

_APPLIES = {True: "applies", False: "judged not to apply", None: "applies if the risk is judged high"}


def iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)


CLI_HINT = "--high-risk or --low-risk records one"


def risk_line(risk: RiskJudgement | None, hint: str = CLI_HINT) -> str:
    """The officer's judgement in one line; ``hint`` says how to record one when there is none."""
    if risk is None:
        return f"risk judgement: none recorded ({hint})"
    word = {True: "HIGH risk", False: "below the high-risk threshold", None: "undecided"}[risk.high_risk]
    return f"risk judgement: {word}, by {risk.by} at {iso(risk.at)}" + (f": {risk.note}" if risk.note else "")


def assessment_lines(
    incident_id: str, a: Assessment, risk: RiskJudgement | None, bad_rows: int = 0, *, hint: str = CLI_HINT
) -> list[str]:
    """The assessment of ``incident_id`` as text lines, ending with the not-legal-advice note."""
    out = [f"{incident_id}: breach assessment (detected {format_utc(a.detected_at)})", risk_line(risk, hint)]
    out.append(
        f"people affected: {a.people}   records: {a.records}   records with no person: {a.unknown_records}"
    )
    if bad_rows:
        out.append(f"lookup rows without a person id: {bad_rows}")
    if a.categories:
        out.append("people per category: " + ", ".join(f"{k} {v}" for k, v in a.categories.items()))
    if a.countries:
        out.append("people per country: " + ", ".join(f"{k or '(none)'} {v}" for k, v in a.countries.items()))
    for j in a.jurisdictions:
        out.append(f"jurisdiction: {j.name} ({', '.join(j.countries)}): {j.people} people")
    if a.uncovered_countries:
        out.append("no regime known for: " + ", ".join(c or "(no country)" for c in a.uncovered_countries))
    for hint in a.risk_hints:
        out.append(f"hint: {hint}")
    if a.clocks:
        out += ["", "clocks:"]
    for c in a.clocks:
        if c.trigger == "risk" and c.applies is None:
            state = "applies unless the breach is unlikely to result in a risk"
        else:
            state = _APPLIES[c.applies]
        when = f"{c.kind} {format_utc(c.due_at)}" if c.due_at is not None else "no fixed period"
        out.append(f"  [{c.regime}] {c.what}: {when} ({state})")
        out.append(f"      {c.wording}  [{c.source}]")
    out += ["", NOT_LEGAL_ADVICE]
    return out
