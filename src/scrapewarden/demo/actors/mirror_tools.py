"""Scraper 10: the site copied with the classic mirroring tools, ``wget --mirror`` and ``httrack``.

Both are run as most people run them to copy a site: recursive, robots.txt ignored, no pause
between requests, bounded only by a time limit and a byte quota; each from its own hosting
address (sent as ``X-Forwarded-For`` with ``--header`` / ``-%X``) into a temporary directory
that is deleted afterwards. A tool that is not installed is skipped with the reason.

Scoring: each tool's own log lists every response it got, in order (wget's ``-nv`` log;
httrack's ``hts-cache/new.txt``), with the local file it was saved to. Each response is scored
with that file's contents (wget also keeps refusal pages, ``--content-on-error``; httrack
does not, so a 403 it got cannot be told apart as a challenge and counts as a block). Any
record in any saved file counts as received, even when the log could not be tied to it
(wget cannot keep ``/users/1`` as a file once ``/users/1/followers`` needs it as a folder).
Neither tool reports per-request times: each response is given the run's mean time.
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..records import records_in
from .base import ActorResult, Target
from .programs import ProgramUnavailable, hosting_address, run_program

QUOTA_BYTES = 200 * 1024 * 1024
"""Most either tool may download in one run (its own limit, besides the deadline)."""

MAX_FILE_BYTES = 2 * 1024 * 1024
"""Bigger files are not read back for scoring (pages here are a few kilobytes)."""


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


async def run_wget(
    target: Target,
    deadline: float,
    rng: random.Random,
    *,
    name: str = "wget-mirror",
    ip: str | None = None,
    quota_bytes: int = QUOTA_BYTES,
) -> ActorResult:
    """``wget --mirror`` of the site until ``deadline`` (SIGTERM then) or the quota."""
    wget = shutil.which("wget")
    if not wget:
        raise ProgramUnavailable("wget is not installed (apt-get install wget)")
    result = ActorResult(name, "scraper")
    address = ip or hosting_address(rng)
    with tempfile.TemporaryDirectory(prefix="scrapewarden-wget-") as work:
        root = Path(work)
        log = root / "wget.log"
        argv = [
            wget,
            "--mirror",
            "-e",
            "robots=off",
            "--header",
            f"X-Forwarded-For: {address}",
            f"--quota={quota_bytes}",
            "--tries=1",
            "--timeout=10",
            "--content-on-error",  # keep refusal pages: they say whether it was a challenge
            "--no-verbose",
            f"--output-file={log}",
            f"--directory-prefix={root / 'site'}",
            target.base_url.rstrip("/") + "/",
        ]
        run = await run_program(argv, deadline, cwd=root)
        responses = list(_wget_responses(log.read_text("utf-8", "replace") if log.exists() else ""))
        _score(result, responses, root / "site", target, run.elapsed_s)
    return result


async def run_httrack(
    target: Target,
    deadline: float,
    rng: random.Random,
    *,
    name: str = "httrack",
    ip: str | None = None,
    quota_bytes: int = QUOTA_BYTES,
) -> ActorResult:
    """``httrack`` copy of the site with its own time (``-E``) and size (``-M``) limits."""
    httrack = shutil.which("httrack")
    if not httrack:
        raise ProgramUnavailable("httrack is not installed (apt-get install httrack)")
    result = ActorResult(name, "scraper")
    address = ip or hosting_address(rng)
    seconds = max(1, int(deadline - time.monotonic()))
    with tempfile.TemporaryDirectory(prefix="scrapewarden-httrack-") as work:
        root = Path(work)
        argv = [
            httrack,
            target.base_url.rstrip("/") + "/",
            "-O",
            str(root / "site"),
            "-s0",  # never follow robots.txt
            f"-E{seconds}",
            f"-M{quota_bytes}",
            "-%X",
            f"X-Forwarded-For: {address}",
            "-c4",
            # Without these httrack holds itself to a few connections a second and a trickle of
            # bytes ("security limits"); people copying a site turn them off, as here.
            "-%c0",  # no cap on connections per second
            "-A100000000",  # transfer rate cap far above what loopback needs
            "-%!",  # lift the security limits that would otherwise clamp the two above
            "-q",  # no questions asked
        ]
        run = await run_program(argv, deadline, cwd=root)
        cache = root / "site" / "hts-cache" / "new.txt"
        responses = list(_httrack_responses(cache.read_text("utf-8", "replace") if cache.exists() else ""))
        _score(result, responses, root / "site", target, run.elapsed_s)
    return result


async def run_mirror_tools(
    target: Target, deadline: float, rng: random.Random
) -> tuple[list[ActorResult], list[Skipped]]:
    """wget, then httrack, each given half the time left; tools not installed are skipped."""
    results: list[ActorResult] = []
    skipped: list[Skipped] = []
    tools = [("wget-mirror", run_wget), ("httrack", run_httrack)]
    for index, (name, tool) in enumerate(tools):
        left = deadline - time.monotonic()
        share = left / (len(tools) - index)
        try:
            results.append(await tool(target, time.monotonic() + share, rng, name=name))
        except ProgramUnavailable as exc:
            skipped.append(Skipped(name, str(exc)))
    return results, skipped


async def run(target: Target, deadline: float, rng: random.Random) -> list[ActorResult]:
    """The standard scraper 10: whichever of wget and httrack are installed."""
    results, _ = await run_mirror_tools(target, deadline, rng)
    return results


def available() -> list[tuple[str, Callable[[Target, float, random.Random], Awaitable[ActorResult]]]]:
    """The installed tools as separate actors: ``(display name, run)`` for wget and httrack."""
    tools = (("scraper 10: wget --mirror", "wget", run_wget), ("scraper 10: httrack", "httrack", run_httrack))
    return [(label, run) for label, tool, run in tools if tool_unavailable(tool) is None]


def tool_unavailable(tool: str) -> str | None:
    """None when ``tool`` (``wget`` or ``httrack``) is installed, else why it cannot run."""
    return None if shutil.which(tool) else f"{tool} is not installed (apt-get install {tool})"


# ---- reading the tools' logs -----------------------------------------------------------------

Response = tuple[int, str | None]
"""(HTTP status, saved file relative to the mirror root or absolute; None when unknown)."""

_WGET_SAVED = re.compile(r'^\S+ \S+ URL:(\S+) \[[^\]]*\] -> "(.*)" \[\d+\]$')
_WGET_ERROR = re.compile(r"^\S+ \S+ ERROR (\d{3}): ")
_WGET_FAILED_URL = re.compile(r"^(https?://\S+):$")


def _wget_responses(log: str) -> list[Response]:
    """Responses in a ``wget -nv`` log: ``URL:<url> [...] -> "<file>"`` lines for pages kept,
    ``<url>:`` followed by ``ERROR <status>: ...`` for refusals and other HTTP errors."""
    found: list[Response] = []
    failed_url: str | None = None
    for line in log.splitlines():
        if saved := _WGET_SAVED.match(line):
            found.append((200, saved.group(2)))
        elif failed := _WGET_FAILED_URL.match(line):
            failed_url = failed.group(1)
        elif error := _WGET_ERROR.match(line):
            found.append((int(error.group(1)), _wget_local_name(failed_url) if failed_url else None))
            failed_url = None
    return found


def _wget_local_name(url: str) -> str:
    """Where wget keeps a URL's body: ``host:port/path`` (``index.html`` for a folder)."""
    parts = urlsplit(url)
    path = parts.path if not parts.path.endswith("/") else parts.path + "index.html"
    return parts.netloc + path + (f"?{parts.query}" if parts.query else "")


def _httrack_responses(cache: str) -> list[Response]:
    """Responses in httrack's ``hts-cache/new.txt``: tab-separated, status 4th, local file 9th."""
    found: list[Response] = []
    for line in cache.splitlines()[1:]:  # the first line names the columns
        fields = line.split("\t")
        if len(fields) < 9:
            continue
        try:
            status = int(fields[3])
        except ValueError:
            continue
        found.append((status, fields[8] or None))
    return found


def _score(
    result: ActorResult, responses: list[Response], root: Path, target: Target, elapsed_s: float
) -> None:
    mean_s = elapsed_s / len(responses) if responses else 0.0
    read: set[Path] = set()
    for status, saved in responses:
        if status < 100:  # httrack's own failures (connection refused, timeouts): no response
            result.errors += 1
            continue
        body = ""
        if saved and (status == 200 or status >= 400):
            path = _local(root, saved)
            read.add(path)
            body = _read(path)
        result.saw(status, body, target.secret, mean_s)
    # Records in files the log could not be tied to still left the site intact.
    if root.exists():
        for path in root.rglob("*"):
            if path not in read and path.is_file():
                result.records |= records_in(_read(path), target.secret)


def _local(root: Path, saved: str) -> Path:
    path = Path(saved)
    return path if path.is_absolute() else root / path


def _read(path: Path) -> str:
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return ""
        return path.read_text("utf-8", "replace")
    except OSError:
        return ""
