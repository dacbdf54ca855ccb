"""Exposed records -> people through a real CSV file, a real SQLite database and a callable."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from scrapewarden.core.exposure import Record
from scrapewarden.core.policy import PeopleLookupPolicy, Policy, ProtectedResource
from scrapewarden.incidents.people import (
    CallableLookup,
    CsvLookup,
    PeopleLookupError,
    SqlLookup,
    expand_ids,
    find_people,
    lookup_from_policy,
    sqlite_connector,
)

POLICY = Policy(
    protected=[ProtectedResource(pattern="/users/{id}", kind="profile", categories=["name", "photo"])]
)


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_csv_rows_map_records_to_people(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        """\
        kind,record_id,person_id,name,email,language,country,categories
        profile,1,p1,Ada Lovelace,ada@example.org,en,gb,email
        profile,2,p2,Émile Zola,emile@example.fr,fr,FR,location;email
        profile,3,,Nobody,,,,
        search,1,p9,Not a profile,,,,
        profile,4,p1,Ada Lovelace,ada@example.org,en,GB,
        """,
    )
    records = [Record("profile", i) for i in ("1", "2", "3", "4", "404")]
    found = find_people(records, POLICY, CsvLookup(path))
    exposure = found.exposure
    assert [p.person.id for p in exposure.people] == ["p1", "p2"]
    ada = exposure.people[0]
    assert ada.person.country == "GB" and [r.id for r in ada.records] == ["1", "4"]
    assert ada.categories == ["name", "photo", "email"]
    assert exposure.people[1].person.name == "Émile Zola"
    assert [r.id for r in exposure.unknown] == ["3", "404"]  # a row without a person, an unknown id
    assert found.bad_rows == 1 and "line 4" in found.problems[0]
    assert {n: c.people for n, c in exposure.categories.items()} == {
        "email": 2,
        "location": 1,
        "name": 2,
        "photo": 2,
    }


def test_csv_without_kind_column_matches_any_kind(tmp_path: Path) -> None:
    path = _csv(tmp_path, "record_id,person_id\n7,p7\n")
    result = CsvLookup(path).lookup([Record("profile", "7"), Record("", "7")])
    assert {r.kind for r in result.owners} == {"profile", ""}


def test_csv_problems_are_clear(tmp_path: Path) -> None:
    with pytest.raises(PeopleLookupError, match="cannot read"):
        CsvLookup(tmp_path / "missing.csv").lookup([Record("profile", "1")])
    with pytest.raises(PeopleLookupError, match="record_id and person_id"):
        CsvLookup(_csv(tmp_path, "id,name\n1,x\n")).lookup([Record("profile", "1")])


def _database(tmp_path: Path, people: int) -> Path:
    path = tmp_path / "site.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, lang TEXT, country TEXT)"
        )
        db.executemany(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
            [
                (i, f"User {i}", f"u{i}@example.org", "fr" if i % 2 else "en", "FR" if i % 3 else "CA")
                for i in range(1, people + 1)
            ],
        )
    return path


QUERY = (
    "SELECT id AS record_id, id AS person_id, name, email, lang AS language, country "
    "FROM users WHERE id IN ({ids})"
)


def test_sql_lookup_batches_ids_in_a_real_sqlite_database(tmp_path: Path) -> None:
    path = _database(tmp_path, 2000)
    lookup = SqlLookup(sqlite_connector(path), paramstyle="qmark", query=QUERY, batch_size=500)
    records = [Record("profile", str(i)) for i in range(1, 2501)]  # 500 of them do not exist
    found = find_people(records, POLICY, lookup)
    assert found.exposure.people_count == 2000
    assert len(found.exposure.unknown) == 500 and found.exposure.unknown[0] == Record("profile", "2001")
    assert lookup.statements == 5  # 2500 ids in batches of 500: five queries, not 2500
    person = found.exposure.owners[Record("profile", "3")]
    assert (person.name, person.language, person.country) == ("User 3", "fr", "CA")


def test_sql_ids_are_parameters_never_sql(tmp_path: Path) -> None:
    path = _database(tmp_path, 3)
    lookup = SqlLookup(sqlite_connector(path), paramstyle="qmark", query=QUERY)
    evil = Record("profile", "1) OR 1=1 --")
    found = find_people([evil, Record("profile", "2")], POLICY, lookup)
    assert found.exposure.people_count == 1 and found.exposure.unknown == [evil]
    with sqlite3.connect(path) as db:  # and the database is untouched (opened read-only)
        assert db.execute("SELECT count(*) FROM users").fetchone() == (3,)


@pytest.mark.parametrize("style", ["qmark", "numeric", "named"])
def test_paramstyles_sqlite_understands(tmp_path: Path, style: str) -> None:
    path = _database(tmp_path, 5)
    lookup = SqlLookup(sqlite_connector(path), paramstyle=style, query=QUERY, batch_size=2)
    found = find_people([Record("profile", str(i)) for i in range(1, 6)], POLICY, lookup)
    assert found.exposure.people_count == 5


def test_expand_ids_for_format_drivers() -> None:
    assert expand_ids("x IN ({ids}) AND y = '{kept}'", ["a", "b"], "format") == (
        "x IN (%s, %s) AND y = '{kept}'",
        ["a", "b"],
    )
    assert expand_ids("IN ({ids})", ["a"], "pyformat") == ("IN (%(id0)s)", {"id0": "a"})


def test_sql_per_kind_query_and_errors(tmp_path: Path) -> None:
    path = _database(tmp_path, 2)
    lookup = SqlLookup(sqlite_connector(path), paramstyle="qmark", queries={"profile": QUERY})
    found = find_people([Record("profile", "1"), Record("search", "1")], POLICY, lookup)
    assert found.exposure.people_count == 1 and found.exposure.unknown == [Record("search", "1")]
    broken = SqlLookup(
        sqlite_connector(path), paramstyle="qmark", query="SELECT nope FROM users WHERE id IN ({ids})"
    )
    with pytest.raises(PeopleLookupError, match="query failed"):
        broken.lookup([Record("profile", "1")])
    with pytest.raises(PeopleLookupError, match="no such SQLite file"):
        SqlLookup(sqlite_connector(tmp_path / "none.db"), paramstyle="qmark", query=QUERY).lookup(
            [Record("profile", "1")]
        )


def test_callable_from_the_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "site_people.py").write_text(
        textwrap.dedent(
            """\
            CALLS = []

            def owners(pairs):
                CALLS.append(len(pairs))
                out = {}
                for kind, record_id in pairs:
                    if record_id.isdigit() and int(record_id) % 2 == 0:
                        out[(kind, record_id)] = {"person_id": "p" + record_id, "name": "N" + record_id,
                                                  "country": "au", "categories": ["phone"]}
                    elif record_id == "13":
                        out[f"{kind}:{record_id}"] = {"name": "no person id"}
                return out
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    lookup = lookup_from_policy(
        PeopleLookupPolicy(source="callable", function="site_people:owners", batch_size=4)
    )
    assert isinstance(lookup, CallableLookup)
    found = find_people([Record("profile", str(i)) for i in range(1, 15)], POLICY, lookup)
    assert [p.person.id for p in found.exposure.people] == [f"p{i}" for i in range(2, 15, 2)]
    assert found.exposure.people[0].categories == ["name", "photo", "phone"]
    assert found.bad_rows == 1
    import site_people  # the module the policy named

    assert site_people.CALLS == [4, 4, 4, 2]


def test_policy_builds_csv_and_sql_lookups_relative_to_the_policy(tmp_path: Path) -> None:
    _database(tmp_path, 3)
    sql = lookup_from_policy(
        PeopleLookupPolicy(source="sql", database="site.db", query=QUERY), base_dir=tmp_path
    )
    assert sql is not None
    assert len(sql.lookup([Record("profile", "2")]).owners) == 1
    _csv(tmp_path, "record_id,person_id\n1,p1\n")
    csv_lookup = lookup_from_policy(PeopleLookupPolicy(source="csv", path="people.csv"), base_dir=tmp_path)
    assert csv_lookup is not None and len(csv_lookup.lookup([Record("profile", "1")]).owners) == 1
    assert lookup_from_policy(PeopleLookupPolicy()) is None
    with pytest.raises(PeopleLookupError, match="cannot import"):
        lookup_from_policy(PeopleLookupPolicy(source="callable", function="no_such_module_x:f"))
