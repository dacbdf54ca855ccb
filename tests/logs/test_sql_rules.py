"""The SQL path rules classify paths exactly as the live engine's ResourceMatcher does."""

from __future__ import annotations

import duckdb

from scrapewarden.core.policy import Policy, ProtectedResource
from scrapewarden.core.resources import ResourceMatcher
from scrapewarden.logs.sql_rules import asset_condition, record_columns

POLICY = Policy(
    protected=[
        ProtectedResource(pattern="/users/{id}", kind="profile"),
        ProtectedResource(pattern="/@{handle}", kind="profile", sensitivity=3),
        ProtectedResource(pattern="/org/{org}/people/{person}", kind="member", sensitivity=1),
        ProtectedResource(pattern="/search", query_param="q", kind="search"),
        ProtectedResource(pattern="/api/users/{id}", kind="profile", methods=["POST"]),
    ]
)
CASES = [
    ("GET", "/users/42", ""),
    ("GET", "/users/42/", ""),
    ("GET", "/users/42/edit", ""),
    ("GET", "/users/", ""),
    ("HEAD", "/users/a%20b", ""),
    ("GET", "/users/x+y", ""),
    ("POST", "/users/42", ""),
    ("GET", "/@anna", ""),
    ("GET", "/org/acme/people/bob", ""),
    ("GET", "/search", "q=Anna+Smith&page=2"),
    ("GET", "/search", "page=2&q=%C3%A9lise"),
    ("GET", "/search", "q="),
    ("GET", "/search", ""),
    ("POST", "/api/users/9", ""),
    ("GET", "/api/users/9", ""),
    ("GET", "/", ""),
    ("GET", "/static/app.css", ""),
]


def test_records_match_the_live_matcher() -> None:
    matcher = ResourceMatcher(POLICY.protected)
    con = duckdb.connect()
    for method, path, query in CASES:
        row = con.execute(
            f"SELECT rkind, rid, rfactor FROM (SELECT ?::VARCHAR AS method, ?::VARCHAR AS path, "
            f"?::VARCHAR AS query) t, LATERAL (SELECT {record_columns(POLICY)})",
            [method, path, query],
        ).fetchone()
        live = matcher.match(method, path, query)
        expected = (live.kind, live.record_id) if live else (None, None)
        assert row[:2] == expected, (method, path, query)
        if live:
            assert row[2] == {1: 0.5, 2: 1.0, 3: 2.0}[live.sensitivity]


def test_assets_match_the_engine_rule() -> None:
    policy = Policy()
    con = duckdb.connect()
    prefixes, suffixes = tuple(policy.client.asset_prefixes), tuple(policy.client.asset_suffixes)
    for path in ["/static/x", "/a/b.css", "/favicon.ico", "/users/1", "/app.js.map", "/img/x.webp", "/"]:
        (sql,) = con.execute(
            f"SELECT {asset_condition(policy)} FROM (SELECT ?::VARCHAR AS path)", [path]
        ).fetchone()
        assert sql == (path.startswith(prefixes) or path.endswith(suffixes)), path


def test_no_protected_resources_means_no_records() -> None:
    con = duckdb.connect()
    row = con.execute(
        f"SELECT {record_columns(Policy())} FROM (SELECT 'GET' AS method, '/users/1' AS path, '' AS query)"
    ).fetchone()
    assert row == (None, None, None, None)
