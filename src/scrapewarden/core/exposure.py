"""Which people an incident exposed, and which kinds of their data.

A scraper receives records (``profile:42``); a lookup (see :mod:`scrapewarden.incidents.people`)
says whose each record is. This module joins the two: the people affected, every record of each,
the records nobody could be found for, and counts per data category. A record's categories are
the policy's labels for its kind (``categories`` on ``[[protected]]``) together with any the
lookup says that particular record shows, so a profile without a photo need not count as one.

Pure: no I/O. Everything here is plain data that serialises to JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .policy import Policy


@dataclass(frozen=True, slots=True, order=True)
class Record:
    """One exposed record: its kind (the ``[[protected]]`` kind) and its id."""

    kind: str
    id: str

    @classmethod
    def parse(cls, key: str) -> Record:
        """``"profile:42"`` -> Record("profile", "42"); a key without a kind gets kind ``""``."""
        kind, sep, record_id = key.partition(":")
        return cls(kind, record_id) if sep else cls("", key)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class Person:
    """The person a record belongs to, as the lookup knows them."""

    id: str
    name: str = ""
    email: str = ""
    language: str = ""
    """A language tag (``en``, ``fr-CA``); picks the notice template."""
    country: str = ""
    """ISO 3166 alpha-2 code (``FR``, ``GB``); decides which notification rules apply."""

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "language": self.language,
            "country": self.country,
        }


@dataclass(frozen=True, slots=True)
class Owner:
    """What a lookup returns for one record: whose it is and what it shows."""

    person: Person
    categories: tuple[str, ...] = ()
    """Categories this very record shows, beyond the policy's labels for its kind."""


@dataclass(slots=True)
class AffectedPerson:
    person: Person
    records: list[Record] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    """Every category any of this person's exposed records shows, in first-seen order."""

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.person.to_dict(),
            "records": [r.key for r in self.records],
            "categories": list(self.categories),
        }


@dataclass(frozen=True, slots=True)
class CategoryCount:
    records: int
    people: int


@dataclass(slots=True)
class Exposure:
    """The people an incident exposed, and what of theirs."""

    records: list[Record]
    """Every distinct exposed record, in the order given."""
    people: list[AffectedPerson]
    """One entry per person, in the order their first record was given."""
    unknown: list[Record]
    """Records no person was found for (deleted accounts, mistyped ids, ids a scraper made up)."""
    categories: dict[str, CategoryCount]
    owners: dict[Record, Person]

    @property
    def people_count(self) -> int:
        return len(self.people)

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": len(self.records),
            "people": len(self.people),
            "unknown_records": [r.key for r in self.unknown],
            "categories": {
                name: {"records": c.records, "people": c.people} for name, c in self.categories.items()
            },
        }


def categories_by_kind(policy: Policy) -> dict[str, tuple[str, ...]]:
    """Record kind -> the categories the policy labels its pages with (merged across the
    patterns that share a kind, e.g. ``/users/{id}`` and ``/api/v1/profile/{handle}``)."""
    out: dict[str, list[str]] = {}
    for resource in policy.protected:
        labels = out.setdefault(resource.kind, [])
        labels.extend(c for c in resource.categories if c not in labels)
    return {kind: tuple(labels) for kind, labels in out.items()}


def map_exposure(
    records: Iterable[Record],
    owners: Mapping[Record, Owner],
    kind_categories: Mapping[str, Sequence[str]],
) -> Exposure:
    """Join exposed records with what the lookup found for them."""
    seen: set[Record] = set()
    ordered: list[Record] = []
    for record in records:
        if record not in seen:
            seen.add(record)
            ordered.append(record)
    by_person: dict[str, AffectedPerson] = {}
    unknown: list[Record] = []
    record_count: dict[str, int] = {}
    people_in: dict[str, set[str]] = {}
    owner_of: dict[Record, Person] = {}
    for record in ordered:
        owner = owners.get(record)
        labels = list(kind_categories.get(record.kind, ()))
        if owner is None:
            unknown.append(record)
        else:
            labels.extend(c for c in owner.categories if c not in labels)
            # The first description of a person wins: two lookups of one id should agree, and
            # a notice must not switch language or address between records.
            entry = by_person.get(owner.person.id)
            if entry is None:
                entry = by_person[owner.person.id] = AffectedPerson(owner.person)
            entry.records.append(record)
            entry.categories.extend(c for c in labels if c not in entry.categories)
            owner_of[record] = entry.person
        for label in labels:
            record_count[label] = record_count.get(label, 0) + 1
            if owner is not None:
                people_in.setdefault(label, set()).add(owner.person.id)
    categories = {
        label: CategoryCount(count, len(people_in.get(label, ())))
        for label, count in sorted(record_count.items())
    }
    return Exposure(ordered, list(by_person.values()), unknown, categories, owner_of)
