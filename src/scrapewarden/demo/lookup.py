"""The demo site's people lookup: whose is each record an incident names (R8).

The demo policy names this function in ``[incidents.people]`` (``source = "callable"``), as a
real site would name a function over its user table. Records are the ``[[protected]]`` kinds of
``demo/policy.toml``:

- ``profile:<id>`` and ``profile:<handle>`` (``/users/{id}``, ``/api/users/{id}``, ``/@{handle}``):
  that person;
- ``followers:<id>`` (``/users/{id}/followers``): the person whose followers list it is. The
  page also shows the followers' cards; one record has one owner in the incident model, so those
  people are not named (docs/incidents.md, "Limits");
- ``search:<query>``: nobody (a query is not a person): listed as a record without an owner.

The population is the generated one for (``SCRAPEWARDEN_*`` variables are policy overrides,
hence the site's own name) ``CIRCLES_SEED`` (default 7) and
``CIRCLES_PEOPLE`` (default 20,000), the demo's own defaults: set them when the demo ran
with other ``--seed``/``--people``. Accounts that signed up during a run lived only in the site's
memory and come back unknown.

Language and country come from the locale the person's name was drawn from (``fr_FR`` -> ``fr``,
``FR``); Swahili names (locale ``sw``) have no country, as real records sometimes lack one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..core.exposure import Owner, Person
from .people import Person as SitePerson
from .people import Population, population

SEED_ENV = "CIRCLES_SEED"
PEOPLE_ENV = "CIRCLES_PEOPLE"


def _population() -> Population:
    return population(int(os.environ.get(SEED_ENV, "7")), int(os.environ.get(PEOPLE_ENV, "20000")))


def _person(crowd: Population, raw: str) -> SitePerson | None:
    if raw.isascii() and raw.isdigit() and raw[0] != "0" and len(raw) <= 9:
        number = int(raw)
        return crowd.people[number - 1] if 1 <= number <= crowd.n else None
    return crowd.by_handle.get(raw)


def owners(pairs: Sequence[tuple[str, str]]) -> Mapping[tuple[str, str], Owner]:
    """``(kind, id)`` -> the owner, for the records the demo site knows; others are left out."""
    crowd = _population()
    out: dict[tuple[str, str], Owner] = {}
    for kind, record_id in pairs:
        if kind not in ("profile", "followers"):
            continue
        found = _person(crowd, record_id)
        if found is None:
            continue
        language, _, country = found.locale.partition("_")
        person = Person(str(found.id), found.name, found.email, language, country)
        # What each kind shows is labelled on its [[protected]] page in demo/policy.toml.
        out[(kind, record_id)] = Owner(person)
    return out
