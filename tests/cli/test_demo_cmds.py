"""`scrapewarden demo` end to end: three real sites on loopback, real clients, scored."""

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_scores_and_writes_the_documented_json(tmp_path):
    out = tmp_path / "demo.json"
    exe = Path(sys.executable).with_name("scrapewarden")
    proc = subprocess.run(
        [
            str(exe),
            "demo",
            "--duration",
            "6",
            "--people",
            "2000",
            "--persons",
            "4",
            "--no-programs",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["records_total"] == 2000
    for actor in result["actors"]:
        assert set(actor) == {
            "name",
            "kind",
            "requests",
            "records_exposed",
            "records_before_first_action",
            "outcome",
        }
        assert actor["kind"] in {"scraper", "human", "good_bot"}
        assert actor["outcome"] in {"blocked", "challenged", "throttled", "none"}
    assert {"sessions", "challenged", "throttled", "blocked"} <= set(result["humans"])
    assert set(result["baselines"]) == {"none", "per_ip_limit"}
    assert result["humans"]["blocked"] == 0
    assert "records received by each client" in proc.stdout
