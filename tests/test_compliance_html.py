"""The compliance report's HTML page: every text that came from outside is escaped, wherever it
appears (samples, incident titles and owners, audit entries), and the page loads nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from scrapewarden.compliance_html import duration, render_html, show
from scrapewarden.core.audit import AuditRecord, Verification, chain
from scrapewarden.core.compliance import build_report
from scrapewarden.core.event_figures import Period, tally_events
from scrapewarden.core.incidents import Actors, Detection, assign, open_incident
from scrapewarden.core.measures import Inputs
from scrapewarden.core.policy import Policy

T0 = 1_800_000_000.0
EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


@dataclass
class Ev:
    ts: float
    action: str
    reasons: list[str]
    path: str
    user_agent: str
    account: str | None
    enforced: bool = True
    record: str | None = None


def test_hostile_text_is_escaped_everywhere_it_appears() -> None:
    period = Period(T0, T0 + 86400)
    events = [Ev(T0 + 1, "block", [f"bot user agent ({EVIL})"], "/u/" + EVIL, EVIL, EVIL)]
    incident = open_incident(
        "inc-1",
        Detection(ts=T0 + 2, source="manual", verdict="block", actors=Actors(ips=["p"])),
        at=T0 + 2,
        by="alice",
        title=EVIL,
    )
    assign(incident, owner=EVIL, team=EVIL, at=T0 + 3, by="alice")
    change = chain(AuditRecord(T0 + 4, EVIL, "policy.write", EVIL, {"note": EVIL}), None)
    report = build_report(
        Inputs(
            policy=Policy(protected=[{"pattern": "/u/{id}"}]),  # type: ignore[list-item]
            figures=tally_events(events, period),
            incidents=[incident],
            audit=[change],
            verification=Verification(1, change.hash, 1),
            period=period,
            generated_at=period.until,
        )
    )
    page = render_html(report)
    assert "<script" not in page and "<img" not in page
    escaped = "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
    # path, user agent, account, reason, incident title, owner, team, audit actor, target, details
    assert page.count(escaped) >= 10
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "not legal advice" in page


def test_figures_read_plainly() -> None:
    assert show(None) == show("") == show({}) == "-"
    assert (show(True), show(2.0), show(["ip", "account"])) == ("yes", "2", "ip, account")
    assert show({"a": 1, "b": {"c": None}}) == "a: 1, b: c: -"
    assert (duration(None), duration(59.6), duration(3700), duration(90000)) == ("-", "1m", "1h 1m", "1d 1h")
