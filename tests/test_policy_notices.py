"""The [incidents.people] and [incidents.notices] sections and [[protected]] categories in a policy file."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrapewarden.policy_file import PolicyError, load_policy


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # so errors name the file as an operator would: "policy.toml"


def _errors(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "policy.toml").write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy("policy.toml", env={})
    return str(info.value).splitlines()


def test_sections_are_read(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        """[[protected]]
pattern = "/users/{id}"
categories = ["Name", "photo"]

[incidents.people]
source = "sql"
database = "site.db"
queries = { profile = "SELECT id AS record_id, id AS person_id FROM users WHERE id IN ({ids})" }

[incidents.notices]
organisation = "Example"
default_language = "fr_CA"
""",
        encoding="utf-8",
    )
    policy = load_policy(path, env={})
    assert policy.protected[0].categories == ["name", "photo"]
    assert policy.incidents.people.queries["profile"].endswith("IN ({ids})")
    assert policy.incidents.notices.default_language == "fr-ca"
    assert "site.db" not in repr(policy.incidents.people)  # a DSN may hold a password


def test_mistakes_are_reported_with_lines(tmp_path: Path) -> None:
    lines = _errors(
        tmp_path,
        """[[protected]]
pattern = "/users/{id}"
categories = ["name", " "]

[incidents.people]
source = "sql"
database = "site.db"
query = "SELECT * FROM users WHERE id IN ({ids})"
bach_size = 10

[incidents.notices]
deletion_days = 0
""",
    )
    assert lines == [
        "protected[0].categories: a category must not be empty (policy.toml line 3)",
        "incidents.people.bach_size: unknown key (did you mean batch_size?) (policy.toml line 9)",
        "incidents.notices.deletion_days: must be > 0 (policy.toml line 12)",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('source = "csv"', 'source "csv" needs path'),
        ('source = "sql"\ndatabase = "x.db"', 'source "sql" needs query'),
        ('source = "sql"\ndatabase = "x.db"\nquery = "SELECT 1"', "every query needs {ids}"),
        ('source = "callable"', 'source "callable" needs function'),
        ('source = "callable"\nfunction = "not a name"', 'must look like "package.module:function"'),
        ('source = "ldap"', "must be"),
    ],
)
def test_incomplete_sources(tmp_path: Path, body: str, message: str) -> None:
    lines = _errors(tmp_path, f"[incidents.people]\n{body}\n")
    assert len(lines) == 1 and message in lines[0] and "line" in lines[0]
