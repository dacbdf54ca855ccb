"""The labelled log generator and the analyze benchmark's scoring."""

from __future__ import annotations

from pathlib import Path

from scrapewarden.bench.access_log import LogSpec, generate, write
from scrapewarden.bench.analyze_bench import score
from scrapewarden.logs.reader import connect, load


def test_generator_is_deterministic_and_labels_every_address(tmp_path: Path) -> None:
    a_lines, a_labels = generate(LogSpec(lines=30_000, seed=3))
    b_lines, b_labels = generate(LogSpec(lines=30_000, seed=3))
    assert a_lines == b_lines and a_labels == b_labels
    assert {line[1] for line in a_lines} <= set(a_labels)
    kinds = set(a_labels.values())
    assert {"human", "verified_bot", "rotating", "subnet", "single_ip", "bot_ua", "headless"} <= kinds
    labels = write(LogSpec(lines=30_000, seed=3), tmp_path / "a.log")
    stats = load(connect(), [tmp_path / "a.log"])
    assert (stats.lines, stats.bad_lines) == (30_000, 0)
    assert set(labels) == {line[1] for line in a_lines}


def test_score_attributes_false_positives_to_the_group_they_were_reported_in() -> None:
    labels = {"r1": "rotating", "r2": "rotating", "h1": "human", "h2": "human", "s1": "single_ip"}
    verdicts = {"r1": "scraper", "r2": "human", "h1": "scraper", "h2": "suspicious", "s1": "scraper"}
    groups = {"r1": "campaign:x", "h1": "campaign:x", "h2": "ip:h2", "s1": "ip:s1"}
    result = score(verdicts, labels, groups)
    assert (result["false_positives"], result["false_positives_alone"]) == (2, 1)
    rotating = result["kinds"]["rotating"]
    assert (rotating["detected"], rotating["false_positives"], rotating["recall"]) == (1, 2, 0.5)
    single = result["kinds"]["single_ip"]
    assert (single["false_positives"], single["precision"]) == (1, 0.5)
    assert result["recall"] == round(2 / 3, 4)
