"""Rebuild the bot user-agent and IP lists shipped in ``src/scrapewarden/data/``.

Reads the reference snapshots in ``shared/data`` (each with its SOURCE.md and licence) and
writes compact copies: only the fields the detectors use, IP lists as one CIDR per line,
gzip-compressed when large. Run from the repository root::

    python tools/build_lists.py /work/shared/data

Then update the version/commit lines in each SOURCE.md if the snapshot changed.
"""

from __future__ import annotations

import csv
import gzip
import ipaddress
import json
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "scrapewarden" / "data"

# Published crawler ranges, keyed by the bot name ``ClientSanity.claimed_bot`` returns.
CRAWLER_RANGES = {
    "googlebot": "googlebot",
    "bingbot": "bing",
    "duckduckbot": "duckduckbot",
    "duckassistbot": "duckassistbot",
    "openai": "openai",
    "perplexity": "perplexity",
}


def _cidrs(lines: list[str]) -> list[str]:
    """Valid networks in canonical form, duplicates and comments dropped, sorted."""
    seen: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            seen.add(ipaddress.ip_network(text, strict=False))
        except ValueError:
            print(f"skipped {text!r}", file=sys.stderr)
    return [str(n) for n in sorted(seen, key=lambda n: (n.version, n.network_address, n.prefixlen))]


def _write_gz(path: Path, lines: list[str]) -> None:
    # mtime=0 keeps the file byte-identical between rebuilds of the same data.
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(("\n".join(lines) + "\n").encode("ascii"))


def _folder(name: str, src: Path, licence: str) -> Path:
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    if licence:
        shutil.copyfile(src / licence, folder / "LICENSE")
    return folder


def build(shared: Path) -> None:
    # Bot user agents: pattern + tags only (the example instances stay in the test data).
    src = shared / "crawler-user-agents"
    folder = _folder("crawler-user-agents", src, "LICENSE")
    entries = json.loads((src / "crawler-user-agents.json").read_text())
    compact = [{"pattern": e["pattern"], "tags": e.get("tags", [])} for e in entries]
    (folder / "patterns.json").write_text(json.dumps(compact, separators=(",", ":")) + "\n")

    src = shared / "ai-robots-txt"
    folder = _folder("ai-robots-txt", src, "LICENSE")
    tokens = sorted(json.loads((src / "robots.json").read_text()))
    (folder / "tokens.json").write_text(json.dumps(tokens, indent=0) + "\n")

    src = shared / "x4bnet-lists-vpn"
    folder = _folder("x4bnet-lists-vpn", src, "")
    for kind in ("datacenter", "vpn"):
        lines = (src / kind / "ipv4.txt").read_text().splitlines()
        lines += (src / kind / "ipv6.txt").read_text().splitlines()
        _write_gz(folder / f"{kind}.txt.gz", _cidrs(lines))

    src = shared / "client9-ipcat"
    folder = _folder("client9-ipcat", src, "LICENSE")
    ranges: list[str] = []
    with (src / "datacenters.csv").open(newline="") as fh:
        for row in csv.reader(fh):
            first, last = ipaddress.ip_address(row[0]), ipaddress.ip_address(row[1])
            ranges += [str(n) for n in ipaddress.summarize_address_range(first, last)]
    _write_gz(folder / "datacenters.txt.gz", _cidrs(ranges))

    src = shared / "tor-exit-nodes"
    folder = _folder("tor-exit-nodes", src, "LICENSE")
    with (src / "latest.exits.csv").open(newline="") as fh:
        rows = list(csv.reader(fh, skipinitialspace=True))[1:]
    _write_gz(folder / "exits.txt.gz", _cidrs([row[1] for row in rows if len(row) > 1]))

    src = shared / "lord-alfred-ipranges"
    folder = _folder("lord-alfred-ipranges", src, "LICENSE")
    for bot, upstream in {**CRAWLER_RANGES, "protonvpn": "protonvpn"}.items():
        lines = []
        for family in ("ipv4", "ipv6"):
            path = src / upstream / f"{family}_merged.txt"
            if path.exists():
                lines += path.read_text().splitlines()
        (folder / f"{bot}.txt").write_text("\n".join(_cidrs(lines)) + "\n")


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"))
