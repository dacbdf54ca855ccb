"""Reference data for detector tests: the snapshots in shared/data (see each SOURCE.md)."""

from __future__ import annotations

import gzip
import json
import os
import re
from functools import cache
from pathlib import Path

import pytest

from scrapewarden.core.facts import RequestFacts


def shared_data() -> Path:
    """shared/data: $SCRAPEWARDEN_SHARED_DATA, else beside the repository, else /work/shared/data."""
    candidates = [os.environ.get("SCRAPEWARDEN_SHARED_DATA", "")]
    candidates.append(str(Path(__file__).resolve().parents[3].parent / "shared" / "data"))
    candidates.append("/work/shared/data")
    for candidate in candidates:
        if candidate and Path(candidate, "crawler-user-agents").is_dir():
            return Path(candidate)
    pytest.skip("shared/data reference snapshots not found")


@cache
def crawler_entries() -> list[dict[str, object]]:
    return json.loads((shared_data() / "crawler-user-agents" / "crawler-user-agents.json").read_text())


@cache
def crawler_instances() -> list[str]:
    return [ua for entry in crawler_entries() for ua in entry.get("instances", [])]  # type: ignore[attr-defined]


@cache
def browser_user_agents() -> list[str]:
    """Distinct real browser user agents: fake-useragent, top-user-agents, intoli."""
    root = shared_data()
    uas = [json.loads(line)["useragent"] for line in (root / "fake-useragent" / "browsers.jsonl").open()]
    uas += json.loads((root / "top-user-agents" / "index.json").read_text())
    with gzip.open(root / "intoli-user-agents" / "user-agents.json.gz") as fh:
        uas += [row["userAgent"] for row in json.load(fh)]
    return list(dict.fromkeys(uas))


@cache
def uap_spiders() -> list[str]:
    """uap-core test user agents whose expected device family is 'Spider' (a held-out bot set)."""
    text = (shared_data() / "uap-core" / "tests" / "test_device.yaml").read_text()
    pairs = re.findall(r"user_agent_string: '((?:[^']|'')*)'\n\s+family: '((?:[^']|'')*)'", text)
    return [ua.replace("''", "'") for ua, family in pairs if family == "Spider"]


@cache
def scraper_requests() -> list[dict[str, object]]:
    path = shared_data() / "local-scraper-client-headers" / "requests.jsonl"
    return [json.loads(line) for line in path.open()]


def facts_for(
    headers: list[tuple[str, str]], *, method: str = "GET", path: str = "/", scheme: str = ""
) -> RequestFacts:
    """Facts as a door builds them: lower-case header names in arrival order."""
    lowered = tuple((name.lower(), value) for name, value in headers)
    ua = next((value for name, value in lowered if name == "user-agent"), "")
    extra = {"scheme": scheme} if scheme else {}
    return RequestFacts(
        now=0.0, ip="203.0.113.9", method=method, path=path, headers=lowered, user_agent=ua, extra=extra
    )
