"""Joining exposed records with their owners: people, unknown ids, counts per data category."""

from __future__ import annotations

from scrapewarden.core.exposure import Owner, Person, Record, categories_by_kind, map_exposure
from scrapewarden.core.policy import Policy, ProtectedResource


def test_record_keys_parse_and_print() -> None:
    assert Record.parse("profile:42") == Record("profile", "42")
    assert Record.parse("search:a:b") == Record("search", "a:b")
    assert Record.parse("42") == Record("", "42")
    assert Record("profile", "42").key == "profile:42"


def test_policy_labels_merge_across_patterns_of_one_kind() -> None:
    policy = Policy(
        protected=[
            ProtectedResource(pattern="/users/{id}", kind="profile", categories=["Name", "photo", "name"]),
            ProtectedResource(pattern="/api/p/{h}", kind="profile", categories=["email"]),
            ProtectedResource(pattern="/search", query_param="q", kind="search"),
        ]
    )
    assert categories_by_kind(policy) == {"profile": ("name", "photo", "email"), "search": ()}


def test_people_records_unknowns_and_category_counts() -> None:
    ada = Person("p1", "Ada", "ada@example.org", "en", "GB")
    bob = Person("p2", "Bob", "", "fr", "FR")
    records = [Record("profile", str(i)) for i in range(1, 6)] + [Record("profile", "1")]
    owners = {
        Record("profile", "1"): Owner(ada),
        Record("profile", "2"): Owner(bob, ("location",)),
        Record("profile", "3"): Owner(ada, ("email",)),
        # 4 and 5: nobody (a deleted account, an id the scraper made up)
    }
    exposure = map_exposure(records, owners, {"profile": ("name", "photo")})
    assert len(exposure.records) == 5  # the repeated record counts once
    assert [p.person.id for p in exposure.people] == ["p1", "p2"]
    first = exposure.people[0]
    assert [r.id for r in first.records] == ["1", "3"]
    assert first.categories == ["name", "photo", "email"]
    assert [r.id for r in exposure.unknown] == ["4", "5"]
    counts = {name: (c.records, c.people) for name, c in exposure.categories.items()}
    # Unknown records still showed a name and a photo; they count as records, not as people.
    assert counts == {"email": (1, 1), "location": (1, 1), "name": (5, 2), "photo": (5, 2)}
    assert exposure.to_dict()["unknown_records"] == ["profile:4", "profile:5"]


def test_nothing_exposed_is_an_empty_exposure() -> None:
    exposure = map_exposure([], {}, {})
    assert exposure.people == [] and exposure.unknown == [] and exposure.categories == {}
