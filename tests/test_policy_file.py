"""Loading policy files: validation messages with exact lines, env overrides, the starter policy."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from scrapewarden.core.policy import Policy
from scrapewarden.policy_file import (
    NON_POLICY_VARIABLES,
    PolicyError,
    PolicyIssue,
    format_key_path,
    load_policy,
    policy_from_env,
    starter_policy_text,
)
from scrapewarden.toml_lines import key_lines


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Work next to the files so they can be named as an operator would: "policy.toml".
    monkeypatch.chdir(tmp_path)


def _write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return Path(name)


def _errors(path: Path | str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy(path, env=env or {})
    assert str(info.value) == "\n".join(str(issue) for issue in info.value.issues)
    return str(info.value).splitlines()


# -- valid files ------------------------------------------------------------------------------


def test_empty_file_is_the_default_policy(tmp_path: Path) -> None:
    assert load_policy(_write(tmp_path, ""), env={}) == Policy()


def test_values_are_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """mode = "observe"
[[protected]]
pattern = "/users/{id}"
[limits.per_account]
requests_per_minute = 10
profiles_per_hour = 20
profiles_per_day = 30
""",
    )
    policy = load_policy(path, env={})
    assert policy.observe
    assert policy.protected[0].pattern == "/users/{id}"
    assert policy.limits.per_account.profiles_per_day == 30
    # Tables not mentioned keep their defaults.
    assert policy.limits.per_ip == Policy().limits.per_ip


def test_a_table_that_sets_one_budget_keeps_the_others(tmp_path: Path) -> None:
    # ActorLimits has no defaults of its own; each actor's come from Limits. Setting one value
    # must not make the other two "required" (the starter policy promises that).
    policy = load_policy(_write(tmp_path, "[limits.per_ip]\nprofiles_per_day = 9\n"), env={})
    default = Policy().limits.per_ip
    assert policy.limits.per_ip == default.model_copy(update={"profiles_per_day": 9})


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(b'\xef\xbb\xbfmode = "observe"\n')
    assert load_policy(path, env={}).observe


# -- error messages and line numbers ------------------------------------------------------------


def test_the_documented_error_line(tmp_path: Path) -> None:
    text = (
        "\n" * 13
        + "[limits.per_account]\nrequests_per_minute = 5\nprofiles_per_hour = 5\nprofiles_per_day = 0\n"
    )
    path = _write(tmp_path, text)
    assert _errors(path) == ["limits.per_account.profiles_per_day: must be > 0 (policy.toml line 17)"]
    # The file name is shown as it was given, not resolved.
    absolute = tmp_path / "policy.toml"
    assert _errors(absolute)[0].endswith(f"({absolute} line 17)")


def test_every_problem_is_reported_once_in_file_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """mode = "watch"

[[protected]]
pattern = "/users/{id}"

[[protected]]
pattern = "users"

[[protected]]
kind = "search"

[limits]
per_ip = { requests_per_minute = 0, profiles_per_hour = 1, profiles_per_day = 1 }

[thresholds]
throttle = 90

[privacy]
pseudonymise = true
event_retention_days = "30"
""",
    )
    assert _errors(path) == [
        "mode: must be 'enforce' or 'observe' (policy.toml line 1)",
        "protected[1].pattern: must start with '/' (policy.toml line 7)",
        "protected[2].pattern: required (policy.toml line 9)",
        "limits.per_ip.requests_per_minute: must be > 0 (policy.toml line 13)",
        "thresholds: must satisfy throttle <= challenge <= block (policy.toml line 15)",
        "privacy.pseudonymise: unknown key (did you mean pseudonymize?) (policy.toml line 19)",
        "privacy.event_retention_days: must be an integer (policy.toml line 20)",
    ]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[network]\nipv4_network_prefix = 4", "network.ipv4_network_prefix: must be >= 8"),
        ("[network]\nipv4_network_prefix = 40", "network.ipv4_network_prefix: must be <= 32"),
        ("[network]\nipv4_network_prefix = 24.0", "network.ipv4_network_prefix: must be an integer"),
        ("[network]\ntrusted_proxies = ['10.0.0.0/8', 'nope']", "network.trusted_proxies: not an IP"),
        ("[actions.bans]\nenabled = 'yes'", "actions.bans.enabled: must be true or false"),
        ("[actions.bans]\nscopes = ['ip', 'planet']", "actions.bans.scopes[1]: must be 'ip', 'network'"),
        ("[actions]\nbans = 3", "actions.bans: must be a table"),
        ("[allow]\naccounts = 'bob'", "allow.accounts: must be a list"),
        ("[thresholds]\nblock = 'high'", "thresholds.block: must be a number"),
        ("[identity]\napi_key_header = 5", "identity.api_key_header: must be a string"),
        ("[client]\nheadless = 101", "client.headless: must be <= 100"),
        (
            "[[identity.partners]]\nname = 'x'\nkey_sha256 = 'abc'",
            "identity.partners[0].key_sha256: must be at least 64",
        ),
        (
            "[reputation.extra_lists]\n'my list' = [1]",
            'reputation.extra_lists."my list"[0]: must be a string',
        ),
        ("[[protected]]\npattern = '/u/{id}/{id}'", "protected[0].pattern: placeholder names must differ"),
        ("[[protected]]\npattern = '/about'", "protected[0]: needs a {placeholder}"),
        ("bogus = 1", "bogus: unknown key (policy.toml line 1)"),
    ],
)
def test_plain_english_messages(tmp_path: Path, toml: str, expected: str) -> None:
    (line,) = _errors(_write(tmp_path, toml + "\n"))
    assert line.startswith(expected), line
    assert "Input should" not in line and "Value error" not in line


def test_missing_required_key_points_at_its_table(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """[identity]
api_key_header = "x-api-key"

[[identity.partners]]
name = "lab"
key_sha256 = "{}"

[[identity.partners]]
key_sha256 = "{}"
""".format("a" * 64, "b" * 64),
    )
    assert _errors(path) == ["identity.partners[1].name: required (policy.toml line 8)"]


def test_syntax_error_gives_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'mode = "observe"\n\n[limits\nper_ip = {}\n')
    (line,) = _errors(path)
    assert line.startswith("invalid TOML: ")
    assert line.endswith("(policy.toml line 3)")


def test_syntax_error_in_a_multi_line_array(tmp_path: Path) -> None:
    path = _write(tmp_path, "[traps]\npaths = [\n  '/a',\n  '/b'\n  '/c',\n]\n")
    (line,) = _errors(path)
    assert line.endswith("(policy.toml line 5)"), line


def test_duplicate_key_is_a_syntax_error_with_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "mode = 'observe'\n# x\nmode = 'enforce'\n")
    (line,) = _errors(path)
    assert line.endswith("(policy.toml line 3)"), line


def test_missing_file(tmp_path: Path) -> None:
    assert _errors(tmp_path / "nope.toml") == [f"policy file not found ({tmp_path / 'nope.toml'})"]


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (line,) = _errors(tmp_path)
    assert "directory" in line


def test_invalid_utf8_gives_its_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(b'mode = "observe"\nx = "\xff"\n')
    assert _errors(path) == [f"not valid UTF-8 text ({path} line 2)"]


def test_issue_rendering_without_line_or_key() -> None:
    assert str(PolicyIssue("mode", "required", None, "environment variable X")) == (
        "mode: required (environment variable X)"
    )
    assert str(PolicyIssue("", "invalid TOML: oops", 3, "p.toml")) == "invalid TOML: oops (p.toml line 3)"


def test_format_key_path() -> None:
    assert format_key_path(("protected", 2, "pattern")) == "protected[2].pattern"
    assert format_key_path(("reputation", "extra_lists", "a.b", 0)) == 'reputation.extra_lists."a.b"[0]'
    assert format_key_path(()) == ""


# -- environment overrides --------------------------------------------------------------------


def test_env_overrides_nested_keys_and_beats_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "mode = 'enforce'\n[limits.per_account]\nprofiles_per_day = 100\n")
    env = {
        "SCRAPEWARDEN_MODE": "observe",
        "SCRAPEWARDEN_LIMITS__PER_ACCOUNT__PROFILES_PER_DAY": "300",
        "SCRAPEWARDEN_PRIVACY__KEY": "12345",
        "SCRAPEWARDEN_NETWORK__TRUSTED_PROXIES": '["10.0.0.0/8", "192.0.2.1"]',
        "SCRAPEWARDEN_ACTIONS__DECOY": "true",
        "SCRAPEWARDEN_THRESHOLDS__BLOCK": "90.5",
        "OTHER_PROGRAM_MODE": "whatever",
    }
    policy = load_policy(path, env=env)
    assert policy.observe
    assert policy.limits.per_account.profiles_per_day == 300
    assert policy.limits.per_account.profiles_per_hour == 120  # untouched default
    assert policy.privacy.key == "12345"  # a string key stays a string even if it looks like JSON
    assert policy.network.trusted_proxies == ["10.0.0.0/8", "192.0.2.1/32"]
    assert policy.actions.decoy is True
    assert policy.thresholds.block == 90.5


def test_env_json_table_merges_and_specific_variables_win(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "[limits.per_ip]\nrequests_per_minute = 7\nprofiles_per_hour = 8\nprofiles_per_day = 9\n"
    )
    env = {
        "SCRAPEWARDEN_LIMITS": '{"per_ip": {"profiles_per_day": 99}}',
        "SCRAPEWARDEN_LIMITS__PER_IP__PROFILES_PER_DAY": "100",
        "SCRAPEWARDEN_PROTECTED": '[{"pattern": "/u/{id}"}]',
    }
    policy = load_policy(path, env=env)
    assert (policy.limits.per_ip.requests_per_minute, policy.limits.per_ip.profiles_per_day) == (7, 100)
    assert [r.pattern for r in policy.protected] == ["/u/{id}"]


def test_env_bad_values_name_the_variable() -> None:
    env = {
        "SCRAPEWARDEN_LIMITS__PER_ACCOUNT__PROFILES_PER_DAY": "lots",
        "SCRAPEWARDEN_LIMITS__PER_IP__REQUESTS_PER_MINUTE": "0",
        "SCRAPEWARDEN_MODE": "loud",
    }
    with pytest.raises(PolicyError) as info:
        policy_from_env(env)
    assert str(info.value).splitlines() == [
        "mode: must be 'enforce' or 'observe' (environment variable SCRAPEWARDEN_MODE)",
        "limits.per_ip.requests_per_minute: must be > 0 "
        "(environment variable SCRAPEWARDEN_LIMITS__PER_IP__REQUESTS_PER_MINUTE)",
        "limits.per_account.profiles_per_day: must be an integer "
        "(environment variable SCRAPEWARDEN_LIMITS__PER_ACCOUNT__PROFILES_PER_DAY)",
    ]


def test_env_error_combining_with_the_file_blames_the_variable(tmp_path: Path) -> None:
    path = _write(tmp_path, "[thresholds]\nthrottle = 30\nblock = 80\n")
    lines = _errors(path, {"SCRAPEWARDEN_THRESHOLDS__THROTTLE": "95"})
    assert lines == [
        "thresholds: must satisfy throttle <= challenge <= block "
        "(environment variable SCRAPEWARDEN_THRESHOLDS__THROTTLE)"
    ]


def test_unknown_env_variables_are_errors_but_program_variables_are_not(tmp_path: Path) -> None:
    env = {name: "x" for name in NON_POLICY_VARIABLES}
    assert policy_from_env(env) == Policy()
    env |= {"SCRAPEWARDEN_LIMITS__PER_ACOUNT__PROFILES_PER_DAY": "3", "SCRAPEWARDEN_COLOUR": "red"}
    with pytest.raises(PolicyError) as info:
        policy_from_env(env)
    assert str(info.value).splitlines() == [
        "colour: unknown key (environment variable SCRAPEWARDEN_COLOUR)",
        "limits.per_acount: unknown key (did you mean per_account?) "
        "(environment variable SCRAPEWARDEN_LIMITS__PER_ACOUNT__PROFILES_PER_DAY)",
    ]


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("SCRAPEWARDEN_", "empty key"),
        ("SCRAPEWARDEN_LIMITS____PER_IP", "empty key"),
        ("SCRAPEWARDEN_PROTECTED__0__PATTERN", "set the whole value as JSON in SCRAPEWARDEN_PROTECTED"),
        ("SCRAPEWARDEN_MODE__X", "set the whole value as JSON in SCRAPEWARDEN_MODE"),
    ],
)
def test_env_names_that_cannot_map(variable: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        policy_from_env({variable: "1"})
    (line,) = str(info.value).splitlines()
    assert message in line and f"(environment variable {variable})" in line


def test_env_defaults_to_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRAPEWARDEN_MODE", "observe")
    assert load_policy(_write(tmp_path, ""), env=None).observe
    assert policy_from_env().observe


def test_policy_error_is_not_a_crash_on_odd_env_values() -> None:
    for value in ["", "{", "[1,", "null", '{"x": 1}', "\x00", "1e400", "9" * 5000]:
        with pytest.raises(PolicyError):
            policy_from_env({"SCRAPEWARDEN_LIMITS__PER_IP__PROFILES_PER_DAY": value})


# -- the starter policy --------------------------------------------------------------------------


def test_starter_policy_is_valid_and_holds_the_defaults(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, starter_policy_text()), env={})
    assert policy.model_copy(update={"protected": []}) == Policy()
    kinds = {r.pattern: (r.kind, r.query_param) for r in policy.protected}
    assert kinds == {
        "/users/{id}": ("profile", ""),
        "/api/v1/profile/{handle}": ("profile", ""),
        "/search": ("search", "q"),
    }


def test_starter_policy_mentions_every_section_and_field() -> None:
    text = starter_policy_text()
    data = tomllib.loads(text)
    assert set(data) == set(Policy.model_fields)
    # Every field of every table is written out, so the file documents the whole schema.
    written = key_lines(text)
    defaults = Policy().model_dump()
    for section, value in defaults.items():
        if isinstance(value, dict):
            for key in value:
                # A list of tables may be shown as a commented-out example instead.
                shown = (section, key) in written or f"# [[{section}.{key}]]" in text
                assert shown, f"{section}.{key} missing from the starter policy"
    for marker in ("R3", "R4", "R15", "R17"):
        assert marker in text


# -- the state key ----------------------------------------------------------------------------


def test_the_state_key_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path, 'state = "sqlite:///state.db"\n[limits.per_ip]\nprofiles_per_day = 90\n')
    policy = load_policy(path, env={})
    assert policy.state == "sqlite:///state.db"
    assert Policy().state == ""


def test_a_bad_state_url_names_the_key_and_line_and_masks_the_password(tmp_path: Path) -> None:
    path = _write(tmp_path, 'mode = "enforce"\n\nstate = "redis://sw:hunter2@10.0.0.5:6379/0?timout=1"\n')
    errors = _errors(path)
    assert len(errors) == 1
    assert errors[0].startswith("state: bad state URL 'redis://sw:***@10.0.0.5:6379/0?timout=1': ")
    assert "unknown option 'timout'" in errors[0]
    assert errors[0].endswith("(policy.toml line 3)")
    assert "hunter2" not in "\n".join(errors)


def test_a_bad_state_url_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    path = _write(tmp_path, 'state = "postgres://db/sw"\nmode = "sometimes"\n')
    errors = _errors(path)
    assert errors[0].startswith("state: bad state URL 'postgres://db/sw': unknown scheme")
    assert errors[0].endswith("(policy.toml line 1)")
    assert errors[1].startswith("mode: ") and errors[1].endswith("(policy.toml line 2)")


def test_the_state_url_stays_out_of_the_policy_repr() -> None:
    assert "hunter2" not in repr(Policy(state="redis://:hunter2@localhost/0"))
