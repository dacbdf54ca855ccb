"""open_state: which URL opens which store, and what a bad URL says."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrapewarden.state.errors import StateURLError
from scrapewarden.state.memory import MemoryStore
from scrapewarden.state.redis import RedisStore, parse_redis_url
from scrapewarden.state.sqlite import SQLiteStore
from scrapewarden.state.url import check_state_url, choose_url, open_state, redact


def test_memory_is_the_default_when_nothing_is_configured() -> None:
    store = open_state(env={})
    assert isinstance(store, MemoryStore) and store.url == "memory://"
    store.close()


def test_the_environment_variable_is_read_when_no_url_is_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    store = open_state(env={"SCRAPEWARDEN_STATE": url})
    try:
        assert isinstance(store, SQLiteStore) and store.url == url
    finally:
        store.close()
    assert (tmp_path / "env.db").exists()


def test_an_explicit_url_wins_over_the_environment() -> None:
    store = open_state("memory://", env={"SCRAPEWARDEN_STATE": "redis://localhost"})
    assert isinstance(store, MemoryStore)
    store.close()


def test_three_slashes_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    store = open_state("sqlite:///sub/state.db")
    try:
        assert isinstance(store, SQLiteStore) and store.path == "sub/state.db"
    finally:
        store.close()
    assert (tmp_path / "sub" / "state.db").exists()


def test_four_slashes_is_an_absolute_path(tmp_path: Path) -> None:
    target = tmp_path / "abs.db"
    assert str(target).startswith("/")
    store = open_state(f"sqlite:///{target}")  # "sqlite:///" + "/tmp/..." = four slashes
    try:
        assert isinstance(store, SQLiteStore) and store.path == str(target)
    finally:
        store.close()
    assert target.exists()


def test_percent_escapes_in_the_path_are_decoded(tmp_path: Path) -> None:
    store = open_state(f"sqlite:///{tmp_path}/my%20state.db")
    store.close()
    assert (tmp_path / "my state.db").exists()


def test_retention_is_passed_to_sqlite(tmp_path: Path) -> None:
    store = open_state(f"sqlite:///{tmp_path / 's.db'}", retention_seconds=60)
    try:
        assert isinstance(store, SQLiteStore) and store.retention_seconds == 60
    finally:
        store.close()


def test_a_redis_url_opens_a_redis_store_without_connecting_yet() -> None:
    # Nothing listens on port 1: opening must still work (the store starts degraded on use).
    store = open_state("redis://:hunter2@127.0.0.1:1/3?prefix=site-a&timeout=0.01")
    try:
        assert isinstance(store, RedisStore)
        assert store.url == "redis://:***@127.0.0.1:1/3?prefix=site-a&timeout=0.01"
        assert store.config.db == 3 and store.config.prefix == "site-a"
        assert store.config.password == "hunter2" and "hunter2" not in repr(store.config)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("redis://cache.internal", {"mode": "single", "nodes": (("cache.internal", 6379),), "db": 0}),
        ("redis://u:p%40ss@10.0.0.5:6380/2", {"nodes": (("10.0.0.5", 6380),), "db": 2, "username": "u"}),
        ("rediss://cache:6380", {"mode": "single", "tls": True}),
        ("redis://[::1]:7000/1", {"nodes": (("::1", 7000),), "db": 1}),
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[fd00::3]:7002",
            {"mode": "cluster", "nodes": (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("fd00::3", 7002))},
        ),
        ("rediss+cluster://h1:7000,h2:7000", {"mode": "cluster", "tls": True}),
        ("redis+cluster://h1:7000?tls=1", {"mode": "cluster", "tls": True}),
        (
            "redis+sentinel://s1,s2:26380/mymaster/4",
            {"mode": "sentinel", "nodes": (("s1", 26379), ("s2", 26380)), "service": "mymaster", "db": 4},
        ),
        (
            "redis://h?timeout=0.005&connect_timeout=0.1&bulk_timeout=2&max_connections=4&max_events=50&max_pending=9",
            {
                "timeout": 0.005,
                "connect_timeout": 0.1,
                "max_connections": 4,
                "max_events": 50,
                "max_pending": 9,
            },
        ),
        (
            "rediss://h?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=none",
            {"ssl_ca_certs": "/etc/ca.pem", "ssl_cert_reqs": "none"},
        ),
        (
            "redis://h",
            {
                "timeout": 0.02,
                "connect_timeout": 0.02,
                "bulk_timeout": 1.0,
                "prefix": "scrapewarden",
                "tls": False,
            },
        ),
    ],
)
def test_redis_urls_are_read(url: str, want: dict[str, object]) -> None:
    config = parse_redis_url(url, redact(url))
    for name, value in want.items():
        assert getattr(config, name) == value, name
    if "password" not in url and "@" in url:
        assert config.password == "p@ss"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://", "no host named"),
        ("redis://:pw@", "no host named"),
        ("redis://h1:1,h2:2", "several hosts need redis+cluster://"),
        ("redis://h:notaport", "bad port"),
        ("redis://h:70000", "bad port"),
        ("redis://::1:6379", "IPv6 addresses in brackets"),
        ("redis://[::1:6379", "IPv6"),
        ("redis://h/zero", "database number"),
        ("redis://h/1/2", "database number"),
        ("redis+cluster://h:7000/1", "only database 0"),
        ("redis+sentinel://s1:26379", "name the monitored master"),
        ("redis+sentinel://s1:26379/", "name the monitored master"),
        ("redis://h?colour=blue", "unknown option 'colour'"),
        ("redis://h?timeout=fast", "timeout must be a number of seconds"),
        ("redis://h?timeout=0", "more than 0"),
        ("redis://h?connect_timeout=-1", "more than 0"),
        ("redis://h?max_pending=0", "positive whole number"),
        ("redis://h?max_events=lots", "positive whole number"),
        ("redis://h?prefix={site}", "no braces"),
        ("redis://h?prefix=", "prefix must be"),
        ("redis://h?ssl_ca_certs=/ca.pem", "need TLS"),
        ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs must be"),
        ("redis://h?tls=perhaps", "tls must be 1 or 0"),
        ("redis://h#frag", "no #fragment"),
        ("redis+swarm://h", "unknown scheme"),
    ],
)
def test_bad_redis_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(StateURLError) as info:
        open_state(url)
    assert says in str(info.value)


def test_redis_url_errors_hide_the_password() -> None:
    with pytest.raises(StateURLError) as info:
        open_state("redis://admin:hunter2@cache.internal:6379/x")
    message = str(info.value)
    assert "hunter2" not in message and "cache.internal" in message and "***" in message


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgres://db/state", "unknown scheme"),
        ("sqlite://host/state.db", "no host"),
        ("sqlite:///", "no database file"),
        ("sqlite://", "no database file"),
        ("sqlite:///dir/", "no database file"),
        ("sqlite:///state.db?mode=ro", "no ?options"),
        ("sqlite:///:memory:", "memory://"),
        ("memory://somewhere", "takes no host"),
        ("not a url at all", "unknown scheme"),
        ("http://[::1", "bad state URL"),
    ],
)
def test_bad_urls_are_named_in_the_error(url: str, says: str) -> None:
    with pytest.raises(StateURLError) as info:
        open_state(url)
    assert says in str(info.value)
    assert repr(url) in str(info.value)


def test_redact_only_touches_passwords() -> None:
    assert redact("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert redact("sqlite:///x.db") == "sqlite:///x.db"


# -- which URL: --state > SCRAPEWARDEN_STATE > the policy's state key > memory:// --------------


def test_the_policy_key_is_used_when_neither_flag_nor_environment_names_a_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'policy.db'}"
    store = open_state(None, env={}, default=url)
    try:
        assert isinstance(store, SQLiteStore) and store.url == url
    finally:
        store.close()


def test_precedence_flag_then_environment_then_policy_then_memory() -> None:
    env = {"SCRAPEWARDEN_STATE": "sqlite:///env.db"}
    flag = choose_url("sqlite:///flag.db", env=env, default="sqlite:///policy.db")
    assert flag == ("sqlite:///flag.db", "")
    assert choose_url(None, env=env, default="sqlite:///policy.db") == (
        "sqlite:///env.db",
        "environment variable SCRAPEWARDEN_STATE",
    )
    assert choose_url(None, env={}, default="sqlite:///policy.db") == (
        "sqlite:///policy.db",
        "the policy's state key",
    )
    assert choose_url(None, env={}, default="") == ("memory://", "")
    assert choose_url("  ", env={"SCRAPEWARDEN_STATE": " "}, default=None) == ("memory://", "")


def test_a_bad_url_from_the_policy_says_so_and_masks_the_password() -> None:
    with pytest.raises(StateURLError) as info:
        open_state(None, env={}, default="redis://u:hunter2@h:6379/0?nope=1")
    text = str(info.value)
    assert text.startswith("the policy's state key: bad state URL 'redis://u:***@h:6379/0?nope=1'")
    assert "hunter2" not in text


def test_checking_a_url_opens_nothing(tmp_path: Path) -> None:
    check_state_url(f"sqlite:///{tmp_path / 'never.db'}")
    check_state_url("redis://127.0.0.1:1/0")  # nothing listens there; nothing is asked
    assert not (tmp_path / "never.db").exists()
    with pytest.raises(StateURLError, match="memory:// takes no host"):
        check_state_url("memory://somewhere")


def test_an_unparseable_url_still_hides_its_password() -> None:
    assert "hunter2" not in redact("redis://user:hunter2@[::1:6379/0")
