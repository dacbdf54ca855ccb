"""The shipped lists load, carry their licences, and are shared between users."""

from __future__ import annotations

from importlib import resources

import pytest

from scrapewarden.core.policy import Policy
from scrapewarden.lists import (
    CRAWLER_RANGE_FILES,
    client_sanity,
    ip_ranges_for,
    ip_reputation,
    load_bot_patterns,
    load_ip_ranges,
)

FOLDERS = [
    "crawler-user-agents",
    "ai-robots-txt",
    "x4bnet-lists-vpn",
    "client9-ipcat",
    "tor-exit-nodes",
    "lord-alfred-ipranges",
]


@pytest.mark.parametrize("folder", FOLDERS)
def test_each_data_folder_has_licence_and_source(folder: str) -> None:
    root = resources.files("scrapewarden").joinpath("data").joinpath(folder)
    licence = root.joinpath("LICENSE").read_text()
    source = root.joinpath("SOURCE.md").read_text()
    assert "MIT License" in licence or "CC0" in licence or "Creative Commons" in licence, folder
    assert "Origin" in source and "Licence" in source


def test_shipped_data_stays_small() -> None:
    root = resources.files("scrapewarden").joinpath("data")
    total = sum(
        len(root.joinpath(f).joinpath(item.name).read_bytes())
        for f in FOLDERS
        for item in root.joinpath(f).iterdir()
    )
    assert total < 2 * 1024 * 1024


def test_bot_patterns_load_once() -> None:
    patterns = load_bot_patterns()
    assert patterns is load_bot_patterns()
    assert patterns.size > 1600  # ~1,500 crawler patterns + ~160 AI tokens + headless markers
    assert patterns.classify("Wget/1.21.3") is not None


def test_ip_ranges_load_once_with_every_list() -> None:
    ranges = load_ip_ranges()
    assert ranges is load_ip_ranges()
    sizes = ranges.sizes()
    assert sizes["datacenter"] > 50_000 and sizes["vpn"] > 10_000 and sizes["tor"] > 1_000
    for bot in CRAWLER_RANGE_FILES:
        assert sizes[f"crawler:{bot}"] > 0, bot


def test_policy_lists_are_added_per_policy() -> None:
    policy = Policy(
        deny={"networks": ["192.0.2.0/24"]}, reputation={"extra_lists": {"mine": ["198.51.100.0/24"]}}
    )
    ranges = ip_ranges_for(policy)
    assert "192.0.2.1" in ranges.deny and "198.51.100.1" in ranges.extra["mine"]
    assert "192.0.2.1" not in load_ip_ranges().deny
    assert ranges.datacenter is load_ip_ranges().datacenter  # shipped trees are shared, not copied


def test_convenience_constructors() -> None:
    assert client_sanity(Policy()).claimed_bot("Googlebot/2.1") == "googlebot"
    assert ip_reputation(Policy()).in_crawler_range("66.249.66.1", "googlebot")
