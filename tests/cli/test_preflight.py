"""A door started with a bad policy state key or --state stops with one clear line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from scrapewarden.cli.main import main


@pytest.mark.parametrize("door", [["authz"], ["proxy", "--upstream", "http://127.0.0.1:9"]])
def test_a_bad_state_key_in_the_policy_names_key_and_line(tmp_path: Path, door: list[str]) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('mode = "observe"\nstate = "redis://sw:hunter2@127.0.0.1:1/0?bogus=1"\n')
    result = CliRunner().invoke(main, [*door, "--policy", str(policy)], env={"SCRAPEWARDEN_STATE": ""})
    assert result.exit_code == 1, result.output
    assert "state: bad state URL 'redis://sw:***@127.0.0.1:1/0?bogus=1'" in result.output
    assert f"({policy} line 2)" in result.output
    assert "hunter2" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_bad_state_flag_is_named_as_such(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["authz", "--state", "redis://:hunter2@[::1/0"])
    assert result.exit_code == 1
    assert "--state (or SCRAPEWARDEN_STATE): bad state URL 'redis://:***@[::1/0'" in result.output
    assert "hunter2" not in result.output
