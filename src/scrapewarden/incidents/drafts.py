"""Letter drafts from editable Jinja2 templates (R7, R8).

Four letters follow a scraping incident: a notice to each person whose records were taken (in
their language where a template exists; ``en`` and ``fr`` ship), a report to each regulator whose
people are concerned, a cease-and-desist letter to the scraper's operator, and a demand that the
scraped data be deleted and the deletion confirmed by a date. They are drafts: each opens with a
note to the reviewer, and none is sent by this module.

Templates live in this package's ``templates`` directory; a directory named in
``[incidents.notices] templates_dir`` overrides them file by file (same names, see
docs/notices.md). ``*.html.j2`` templates are autoescaped; plain-text ones are not, but every
string handed to a template first passes through :func:`plain`, which makes control characters
visible, so a user agent cannot start new lines that read as part of the letter. Values are data, never
template source: a user agent such as ``{{ 7*7 }}`` prints as written. The environment is
sandboxed, so a template from a shared directory cannot reach into Python either.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, StrictUndefined, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from ..core.breach import NOT_LEGAL_ADVICE, Assessment, format_utc
from ..core.exposure import AffectedPerson, Exposure
from ..core.policy import NoticePolicy
from .facts import IncidentFacts

DAY = 86400.0
SHIPPED_LANGUAGES = ("en", "fr")
_PSEUDONYM = re.compile(r"(ip|net|account)~[0-9a-f]{8,64}")
_NOTICE_TEMPLATE = re.compile(r"notice\.([a-z]{2,3}(?:-[a-z0-9]{2,8})*)\.txt\.j2")
OPERATOR_LETTERS = ("cease_and_desist", "deletion_demand")


def is_pseudonym(value: str) -> bool:
    """``ip~3fa9…``: a keyed pseudonym (``core/pseudonym.py``), meaningless to anyone without the
    key, so a letter to the operator cannot quote it as an address or an account."""
    return bool(_PSEUDONYM.fullmatch(value))


def _split(values: list[str]) -> tuple[list[str], int]:
    """The values a letter can quote, and how many are pseudonyms it cannot."""
    kept = [v for v in values if not is_pseudonym(v)]
    return kept, len(values) - len(kept)


def plain(value: Any) -> Any:
    """A value as it may appear in a letter: control and bidi-format characters shown as
    ``\\x1b``/``\\u202e`` escapes instead of acting (new lines, reordered text, terminal codes)."""
    if not isinstance(value, str):
        return value
    if value.isprintable():
        return value
    out = []
    for ch in value:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)


def _is_html(name: str | None) -> bool:
    return bool(name) and ".html" in str(name)


def template_environment(templates_dir: str | Path = "") -> SandboxedEnvironment:
    loaders: list[Any] = []
    if templates_dir:
        loaders.append(FileSystemLoader(str(templates_dir)))
    loaders.append(PackageLoader("scrapewarden.incidents", "templates"))
    env = SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        autoescape=_is_html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["utc"] = lambda ts: format_utc(float(ts)) if ts is not None else ""
    env.globals["count"] = count
    return env


def count(n: int, one: str, many: str) -> str:
    """``count(1, "record", "records")`` -> ``1 record``."""
    return f"{n} {one if n == 1 else many}"


def clean(value: Any) -> Any:
    """``value`` with every string in it passed through :func:`plain` (dicts, lists, tuples
    walked). The context is cleaned once, before rendering, so macros and filters in any
    template only ever see harmless text."""
    if isinstance(value, str):
        return plain(value)
    if isinstance(value, Mapping):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Draft:
    """One rendered letter, not yet reviewed (tracking of sent letters: core/letters.py)."""

    path: str
    """Where it goes in a bundle, e.g. ``letters/cease_and_desist.txt``."""
    subject: str
    body: str
    """The letter itself (what is sent, after review)."""
    review_note: str

    @property
    def text(self) -> str:
        """The draft as saved: the review note, then the letter."""
        if self.path.endswith(".html"):
            return f"<!-- {self.review_note} -->\n{self.body}"
        return f"{self.review_note}\n{'=' * 72}\n{self.body}"


@dataclass(slots=True)
class Drafts:
    letters: list[Draft] = field(default_factory=list)
    mail_merge_csv: str = ""
    languages: dict[str, int] = field(default_factory=dict)
    """Language of the notice template used -> people."""

    def files(self) -> dict[str, str]:
        out = {letter.path: letter.text for letter in self.letters}
        out["notices/mail_merge.csv"] = self.mail_merge_csv
        return out


@dataclass(frozen=True, slots=True)
class Operator:
    """The scraper's operator as far as known; blanks become visible placeholders."""

    name: str = ""
    contact: str = ""


def review_note(facts: IncidentFacts) -> str:
    return (
        f"DRAFT for incident {facts.id}. Review, complete the [bracketed] parts and check every "
        f"fact before sending. {NOT_LEGAL_ADVICE}"
    )


class Drafter:
    def __init__(self, notices: NoticePolicy, *, templates_dir: str | Path | None = None) -> None:
        self.notices = notices
        folder = notices.templates_dir if templates_dir is None else templates_dir
        self.env = template_environment(folder)

    # -- choosing templates --------------------------------------------------------------------

    def language_for(self, wanted: str, kind: str = "notice", ext: str = "txt") -> str:
        """The best language with a ``kind`` template: the person's tag, its base language, the
        policy's default, then English."""
        tag = wanted.strip().lower().replace("_", "-")
        candidates = [tag, tag.split("-")[0], self.notices.default_language, "en"]
        for lang in dict.fromkeys(c for c in candidates if c):
            if self._exists(f"{kind}.{lang}.{ext}.j2"):
                return lang
        raise TemplateNotFound(f"{kind}.en.{ext}.j2")

    def notice_languages(self) -> list[str]:
        """Languages with a plain-text notice template (shipped or in ``templates_dir``)."""
        found = {m.group(1) for m in map(_NOTICE_TEMPLATE.fullmatch, self.env.list_templates()) if m}
        return sorted(found)

    def _exists(self, name: str) -> bool:
        try:
            self.env.get_template(name)
        except TemplateNotFound:
            return False
        return True

    # -- rendering -----------------------------------------------------------------------------

    def render_all(
        self,
        facts: IncidentFacts,
        exposure: Exposure,
        assessment: Assessment,
        *,
        drafted_at: float,
        operator: Operator | None = None,
    ) -> Drafts:
        drafts = Drafts()
        # Cleaned once here; per-person parts are cleaned as they are added (see notice()).
        base = self.context(facts, exposure, assessment, drafted_at=drafted_at, operator=operator)
        rows: list[dict[str, Any]] = []
        for entry in exposure.people:
            letter, lang = self.notice(entry, base)
            drafts.letters.append(letter)
            drafts.languages[lang] = drafts.languages.get(lang, 0) + 1
            # An HTML version only in the same language as the text, never a mix of the two.
            if self._exists(f"notice.{lang}.html.j2"):
                drafts.letters.append(self.notice(entry, base, ext="html", language=lang)[0])
            rows.append(
                {
                    "person_id": entry.person.id,
                    "name": entry.person.name,
                    "email": entry.person.email,
                    "language": lang,
                    "country": entry.person.country,
                    "records": len(entry.records),
                    "categories": "; ".join(entry.categories),
                    "subject": letter.subject,
                    "notice_file": letter.path,
                    "body": letter.body,
                }
            )
        drafts.mail_merge_csv = csv_text(
            [
                "person_id",
                "name",
                "email",
                "language",
                "country",
                "records",
                "categories",
                "subject",
                "notice_file",
                "body",
            ],
            rows,
        )
        # One report per regime concerned; with none known, one report to complete by hand.
        for regime in [j.regime for j in assessment.jurisdictions] or [""]:
            drafts.letters.append(self.regulator_report(base, regime))
        for kind in OPERATOR_LETTERS:
            drafts.letters.append(self.draft(kind, base))
        return drafts

    def context(
        self,
        facts: IncidentFacts,
        exposure: Exposure,
        assessment: Assessment,
        *,
        drafted_at: float,
        operator: Operator | None = None,
    ) -> dict[str, Any]:
        """What every letter of this incident is rendered from, already cleaned (see
        :func:`clean`): hand it to :meth:`draft` to render one letter at a time."""
        result: dict[str, Any] = clean(
            self._context(facts, exposure, assessment, drafted_at, operator or Operator())
        )
        return result

    def draft(
        self,
        kind: str,
        base: Mapping[str, Any],
        *,
        person: AffectedPerson | None = None,
        regime: str = "",
        language: str | None = None,
    ) -> Draft:
        """One letter, as :meth:`render_all` renders it: ``notice`` (to ``person``, in
        ``language`` when a template exists, else in the person's own), ``regulator`` (the report
        for ``regime``), ``cease_and_desist`` or ``deletion_demand``."""
        if kind == "notice":
            if person is None:
                raise ValueError("a notice is drafted for one person")
            lang = self.language_for(language or person.person.language)
            return self.notice(person, base, language=lang)[0]
        if kind == "regulator":
            return self.regulator_report(base, regime)
        if kind in OPERATOR_LETTERS:
            return self._letter(kind, f"letters/{kind}.txt", base)
        raise ValueError(f"unknown letter kind {kind!r}")

    def notice(
        self, entry: AffectedPerson, base: Mapping[str, Any], *, ext: str = "txt", language: str | None = None
    ) -> tuple[Draft, str]:
        lang = language or self.language_for(entry.person.language, ext=ext)
        context = dict(base)
        context["person"] = clean(
            {**entry.person.to_dict(), "records": len(entry.records), "categories": list(entry.categories)}
        )
        path = f"notices/{safe_name(entry.person.id)}.{lang}.{ext}"
        return self._render(f"notice.{lang}.{ext}.j2", path, context), lang

    def regulator_report(self, base: Mapping[str, Any], regime: str) -> Draft:
        context = dict(base)
        context["regime"] = next(
            (j for j in base["assessment"]["jurisdictions"] if j["regime"] == regime),
            {
                "regime": "",
                "name": "[the applicable law]",
                "countries": [],
                "people": base["exposure"]["people"],
            },
        )
        context["authority"] = next(
            (c["authority"] for c in base["assessment"]["clocks"] if c["regime"] == regime),
            "[the supervisory authority]",
        )
        context["regime_clocks"] = [c for c in base["assessment"]["clocks"] if c["regime"] == regime]
        name = f"letters/regulator_{safe_name(regime) if regime else 'report'}.txt"
        return self._render("regulator_report.en.txt.j2", name, context)

    def _letter(self, kind: str, path: str, base: Mapping[str, Any]) -> Draft:
        return self._render(f"{kind}.en.txt.j2", path, dict(base))

    def _render(self, template: str, path: str, context: Mapping[str, Any]) -> Draft:
        # ``context`` is already cleaned: every string in it went through plain().
        text = self.env.get_template(template).render(context)
        subject, body = split_subject(text)
        return Draft(path, subject, body, context["review_note"])

    def _context(
        self,
        facts: IncidentFacts,
        exposure: Exposure,
        assessment: Assessment,
        drafted_at: float,
        operator: Operator,
    ) -> dict[str, Any]:
        n = self.notices
        samples = sorted(facts.samples, key=lambda s: float(s.get("ts", 0) or 0))
        # Pseudonymised addresses and accounts cannot be quoted to the operator: the letters say
        # how many there are and ask the reviewer to fill them in from the access log.
        samples = [
            {k: v for k, v in s.items() if not (k == "ip" and is_pseudonym(str(v)))} for s in samples
        ]
        addresses, hidden_addresses = _split(facts.actors_of("address"))
        networks, hidden_networks = _split(facts.actors_of("network"))
        accounts, hidden_accounts = _split(facts.actors_of("account"))
        return {
            "review_note": review_note(facts),
            "not_legal_advice": NOT_LEGAL_ADVICE,
            "org": {
                "name": n.organisation or "[organisation]",
                "contact_name": n.contact_name or "[name of the privacy officer]",
                "contact_email": n.contact_email or "[contact e-mail]",
                "contact_address": n.contact_address or "[postal address]",
                "website": n.website or "[website]",
            },
            "operator": {
                "name": operator.name or "[name of the operator]",
                "contact": operator.contact or "[address of the operator]",
            },
            "incident": {
                "id": facts.id,
                "title": facts.title,
                "detected_at": facts.detected_at,
                "first_seen": facts.first_seen,
                "last_seen": facts.last_seen,
                "requests": facts.requests,
                "records": max(facts.records_count, len(facts.records)),
                "addresses": addresses,
                "networks": networks,
                "accounts": accounts,
                "pseudonymised": {
                    "addresses": hidden_addresses,
                    "networks": hidden_networks,
                    "accounts": hidden_accounts,
                },
                "fingerprints": facts.actors_of("fingerprint"),
                "user_agents": facts.actors_of("user agent"),
                "detectors": [{"name": k, "reasons": v} for k, v in sorted(facts.detectors.items())],
                "samples": samples[:10],
            },
            "exposure": {
                "people": exposure.people_count,
                "records": len(exposure.records),
                "unknown": len(exposure.unknown),
                "categories": [
                    {"name": name, "records": c.records, "people": c.people}
                    for name, c in exposure.categories.items()
                ],
            },
            "assessment": assessment.to_dict(),
            "drafted_at": drafted_at,
            "deletion_due": drafted_at + n.deletion_days * DAY,
            "response_due": drafted_at + n.response_days * DAY,
            "deletion_days": n.deletion_days,
            "response_days": n.response_days,
        }


def split_subject(text: str) -> tuple[str, str]:
    """Templates start with ``Subject: ...`` (text) or ``<title>...`` (HTML); split it off."""
    first, _, rest = text.partition("\n")
    if first.startswith("Subject:"):
        return first.removeprefix("Subject:").strip(), rest.lstrip("\n")
    match = re.search(r"<title>(.*?)</title>", text, re.S)
    return (match.group(1).strip() if match else ""), text


def safe_name(value: str) -> str:
    """A file name from an id that may hold anything (slashes, dots, spaces): readable part plus
    a short hash, so two ids never share a file."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", unicodedata.normalize("NFKC", value))[:40].strip("_")
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable or 'id'}-{digest}"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: names and record ids come from users and scrapers,
    and one starting with ``=`` would otherwise run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(c, "")) for c in columns])
    return buffer.getvalue()
