"""Traffic the analyzer was not built on: the engine benchmark's generator, written as a log.

Its people are dense (thousands an hour, each a few requests, a third of them assets), so many
fetch records without assets; its scrapers walk ids from one hosting address each. Asset-less
people sharing a popular browser must not add up to a "campaign", and every scraper must be
found."""

from __future__ import annotations

import time
from pathlib import Path

from scrapewarden.bench.engine_bench import BENCH_POLICY, synthetic_requests
from scrapewarden.logs.analyzer import analyze


def test_engine_bench_traffic_as_a_log(tmp_path: Path) -> None:
    facts = synthetic_requests(120_000, 12_000, seed=11)
    labels: dict[str, str] = {}
    log = tmp_path / "access.log"
    with log.open("w") as out:
        for f in facts:
            kind = str(f.extra["actor"])
            if labels.get(f.ip) != "scraper":
                labels[f.ip] = kind
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(f.now))
            target = f.path + ("?" + f.query if f.query else "")
            out.write(f'{f.ip} - - [{stamp}] "GET {target} HTTP/1.1" 200 1000 "-" "{f.user_agent}"\n')
    result = analyze([log], BENCH_POLICY)
    flagged = {ip for ip, v in result.addresses.items() if v.verdict in ("scraper", "suspicious")}
    scrapers = {ip for ip, kind in labels.items() if kind == "scraper"}
    assert len(scrapers) > 300
    assert len(scrapers - flagged) <= len(scrapers) // 100
    people = {ip for ip, kind in labels.items() if kind in ("human", "visitor")}
    assert len(people & flagged) <= len(people) // 1000
    # campaigns may group scrapers sharing a user agent, never people
    in_campaigns = {ip for a in result.actors if a.kind == "campaign" for ip in a.addresses}
    assert not in_campaigns & people
    crawlers = {ip for ip, kind in labels.items() if kind == "bot"}
    assert {result.addresses[ip].verdict for ip in crawlers} == {"verified_bot"}
