"""The short scenario suite (a few seconds): real sites, real clients, three regimes.

The full suite is a benchmark (`scrapewarden bench scenarios`); this one checks the ordering
that every later detector is judged by, and that people are left alone.
"""

from scrapewarden.demo.scenarios import ScenarioConfig, run_scenarios


def test_protection_ordering_and_people_untroubled():
    config = ScenarioConfig(duration=8.0, seed=11, people=3000, persons=8, browser_people=0, programs=False)
    report = run_scenarios(config)
    leaked = {
        "protected": report["scrapers"]["records_leaked_total"],
        "per_ip": report["baselines"]["per_ip_limit"]["scrapers"]["records_leaked_total"],
        "none": report["baselines"]["none"]["scrapers"]["records_leaked_total"],
    }
    # protected << per-address limit << none
    assert leaked["protected"] * 2 < leaked["per_ip"], leaked
    assert leaked["per_ip"] < leaked["none"], leaked
    humans = report["humans"]
    assert humans["sessions"] >= 8 and humans["blocked"] == 0
    assert report["good_bots"]["blocked"] == 0
    kinds = {a["kind"] for a in report["actors"]}
    assert kinds == {"human", "scraper", "good_bot"}
