"""`scrapewarden check` and `scrapewarden init`, through click and through the installed script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrapewarden.cli.main import main
from scrapewarden.policy_file import starter_policy_text

BAD_LIMIT_LINE = 6
BAD_POLICY = """mode = "observe"

[limits.per_account]
requests_per_minute = 100
profiles_per_hour = 50
profiles_per_day = 0
"""
EXPECTED_ERROR = f"limits.per_account.profiles_per_day: must be > 0 (policy.toml line {BAD_LIMIT_LINE})"


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Overrides in the developer's shell must not change what these tests see.
    for name in list(os.environ):
        if name.startswith("SCRAPEWARDEN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _runner() -> CliRunner:
    return CliRunner()


def test_bad_policy_line_is_where_the_test_thinks() -> None:
    assert BAD_POLICY.splitlines()[BAD_LIMIT_LINE - 1] == "profiles_per_day = 0"


# -- check ------------------------------------------------------------------------------------


def test_check_valid_policy_prints_a_summary(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(starter_policy_text(), encoding="utf-8")
    result = _runner().invoke(main, ["check", "policy.toml"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout
    assert "enforce" in result.stdout
    assert "3 resources" in result.stdout
    assert "/search?q=" in result.stdout
    assert "120 profiles/hour, 500/day" in result.stdout
    assert result.stderr == ""


def test_check_summary_names_the_challenge_bands_but_never_the_captcha_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "policy.toml").write_text(starter_policy_text(), encoding="utf-8")
    plain = _runner().invoke(main, ["check", "policy.toml"])
    assert "proof-of-work 14-20 bits from score 50" in plain.stdout and "CAPTCHA" not in plain.stdout
    monkeypatch.setenv("SCRAPEWARDEN_CHALLENGE__CAPTCHA__PROVIDER", "turnstile")
    monkeypatch.setenv("SCRAPEWARDEN_CHALLENGE__CAPTCHA__SITE_KEY", "1x00000000000000000000AA")
    monkeypatch.setenv("SCRAPEWARDEN_CHALLENGE__CAPTCHA__SECRET_KEY", "1x0000000000000000000000000000000AA")
    result = _runner().invoke(main, ["check", "policy.toml"])
    assert result.exit_code == 0, result.output
    assert "turnstile from score 65" in result.stdout
    assert "1x0000000000000000000000000000000AA" not in result.output
    monkeypatch.delenv("SCRAPEWARDEN_CHALLENGE__CAPTCHA__SECRET_KEY")
    missing = _runner().invoke(main, ["check", "policy.toml"])
    assert missing.exit_code == 2 and "SCRAPEWARDEN_CHALLENGE__CAPTCHA__SECRET_KEY" in missing.stderr


def test_check_invalid_policy_lists_issues_on_stderr_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(BAD_POLICY + "\n[privacy]\nkye = 'x'\n", encoding="utf-8")
    result = _runner().invoke(main, ["check", "policy.toml"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        EXPECTED_ERROR,
        "privacy.kye: unknown key (did you mean key?) (policy.toml line 9)",
        "policy.toml: 2 problems, policy not loaded",
    ]


def test_check_applies_environment_overrides_unless_told_not_to(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text("", encoding="utf-8")
    env = {"SCRAPEWARDEN_THRESHOLDS__BLOCK": "10"}
    result = _runner().invoke(main, ["check", "policy.toml"], env=env)
    assert result.exit_code == 2
    assert "(environment variable SCRAPEWARDEN_THRESHOLDS__BLOCK)" in result.stderr
    result = _runner().invoke(main, ["check", "--ignore-env", "policy.toml"], env=env)
    assert result.exit_code == 0, result.stderr


def test_check_takes_the_file_from_scrapewarden_policy(tmp_path: Path) -> None:
    (tmp_path / "from-env.toml").write_text('mode = "observe"\n', encoding="utf-8")
    result = _runner().invoke(main, ["check"], env={"SCRAPEWARDEN_POLICY": "from-env.toml"})
    assert result.exit_code == 0, result.output
    assert "from-env.toml" in result.stdout and "observe" in result.stdout


def test_check_missing_file_exits_2_with_a_clear_message() -> None:
    result = _runner().invoke(main, ["check", "missing.toml"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "policy file not found (missing.toml)"


def test_check_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text("mode = 'observe'\n[limits\n", encoding="utf-8")
    result = _runner().invoke(main, ["check", "policy.toml"])
    assert result.exit_code == 2
    assert result.stderr.startswith("invalid TOML: ")
    assert "(policy.toml line 2)" in result.stderr


def test_check_prints_odd_patterns_as_written(tmp_path: Path) -> None:
    # Rich would swallow "[bold]" as markup if the summary did not escape it.
    text = '[[protected]]\npattern = "/a/[bold]/{id}"\n'
    (tmp_path / "policy.toml").write_text(text, encoding="utf-8")
    result = _runner().invoke(main, ["check", "policy.toml"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "/a/[bold]/{id}" in result.stdout


# -- init -------------------------------------------------------------------------------------


def test_init_writes_the_default_file_and_it_checks(tmp_path: Path) -> None:
    result = _runner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    written = tmp_path / "scrapewarden.toml"
    assert written.read_text(encoding="utf-8") == starter_policy_text()
    assert _runner().invoke(main, ["check", "scrapewarden.toml"]).exit_code == 0


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "mine.toml"
    target.write_text("# my policy\n", encoding="utf-8")
    result = _runner().invoke(main, ["init", "mine.toml"])
    assert result.exit_code == 1
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert target.read_text(encoding="utf-8") == "# my policy\n"
    result = _runner().invoke(main, ["init", "--force", "mine.toml"])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == starter_policy_text()


def test_init_dash_writes_to_stdout(tmp_path: Path) -> None:
    result = _runner().invoke(main, ["init", "-"])
    assert result.exit_code == 0
    assert result.stdout == starter_policy_text()
    assert list(tmp_path.iterdir()) == []


def test_init_into_a_missing_directory_fails_cleanly() -> None:
    result = _runner().invoke(main, ["init", "no/such/dir/policy.toml"])
    assert result.exit_code == 1
    assert result.stderr.startswith("cannot write no/such/dir/policy.toml")


# -- the real console script ------------------------------------------------------------------


def _console_script() -> str:
    beside_python = Path(sys.executable).with_name("scrapewarden")
    found = str(beside_python) if beside_python.exists() else shutil.which("scrapewarden")
    assert found, "the scrapewarden console script is not installed (pip install -e .)"
    return found


def test_installed_script_exit_codes_and_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPEWARDEN_")}
    script = _console_script()

    (tmp_path / "policy.toml").write_text(BAD_POLICY, encoding="utf-8")
    bad = subprocess.run(
        [script, "check", "policy.toml"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[0] == EXPECTED_ERROR

    (tmp_path / "policy.toml").write_text(BAD_POLICY.replace("= 0", "= 300"), encoding="utf-8")
    good = subprocess.run(
        [script, "check", "policy.toml"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert good.returncode == 0, good.stderr
    assert "observe" in good.stdout
