"""`scrapewarden demo` end to end: a real site on loopback, real clients, scored."""

import json
import subprocess
import sys
from pathlib import Path


def test_demo_stops_scrapers_and_leaves_people_alone(tmp_path):
    out = tmp_path / "demo.json"
    exe = Path(sys.executable).with_name("scrapewarden")
    proc = subprocess.run(
        [str(exe), "demo", "--duration", "8", "--json", str(out), "--state", f"sqlite:///{tmp_path}/s.db"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    humans = [a for a in result["actors"] if a["kind"] == "human"]
    scrapers = [a for a in result["actors"] if a["kind"] == "scraper"]
    assert humans and scrapers
    assert result["humans"]["blocked"] == 0 and result["humans"]["challenged"] == 0
    assert all(h["outcome"] == "none" and h["records_exposed"] > 0 for h in humans)
    assert all(s["outcome"] != "none" for s in scrapers)
    sequential = [s for s in scrapers if "sequential" in s["name"]]
    assert all(s["records_exposed"] < 50 for s in sequential)
    assert "Who got what" in proc.stdout
