"""What the actors that are real programs share: finding them, addresses, and ending them.

Chromium, Scrapy, wget and httrack run as child processes. Each is started in its own process
group and, whatever happens (normal end, deadline, cancellation), the whole group is ended
before the actor returns, so no program outlives the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import addresses

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # the demo often runs as root in a container, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No traffic of Chromium's own (updates, sync, field trials): only the actor's clicks.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Chromium flags for every browser actor. Playwright gives each launch a fresh profile dir."""

PERSON_ARGS = ("--disable-blink-features=AutomationControlled",)
"""Headless Chromium under Playwright reports ``navigator.webdriver`` even without
``--enable-automation``; this switch turns that off, as in a browser a person starts."""


def launch_options(*, as_person: bool) -> dict[str, Any]:
    """Keyword arguments for Playwright's ``chromium.launch``: headless Debian Chromium.

    ``as_person``: ``navigator.webdriver`` false, as in the browser a person uses (the people
    actors, and tests of what people see); scrapers keep Playwright's default, which tells every
    page it is automated.
    """
    return {
        "executable_path": chromium_executable(),
        "args": [*CHROMIUM_ARGS, *(PERSON_ARGS if as_person else ())],
        "headless": True,
        "ignore_default_args": ["--enable-automation"] if as_person else None,
    }

DEFAULT_CHROMIUM = "/usr/bin/chromium"

GRACE_S = 3.0
"""How long a program may take to finish after its deadline before its group is killed."""


class ProgramUnavailable(RuntimeError):
    """A program an actor needs is not installed here; the message says which and how to get it."""


def chromium_executable() -> str:
    """Path of the Chromium binary (``SCRAPEWARDEN_CHROMIUM`` overrides), or ProgramUnavailable."""
    wanted = os.environ.get("SCRAPEWARDEN_CHROMIUM")
    for candidate in (wanted, DEFAULT_CHROMIUM, shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ProgramUnavailable("no Chromium binary (install Debian's `chromium` or set SCRAPEWARDEN_CHROMIUM)")


def playwright_available() -> str | None:
    """None when the Playwright package imports, else why not."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the `playwright` Python package is not installed (pip install 'scrapewarden[demo]')"
    return None


def browser_unavailable() -> str | None:
    """None when browser actors can run here, else the reason they cannot."""
    reason = playwright_available()
    if reason:
        return reason
    try:
        chromium_executable()
    except ProgramUnavailable as exc:
        return str(exc)
    return None


def chrome_user_agent(version: str) -> str:
    """The user agent of desktop Chrome on Linux at ``version``'s major release.

    Headless Chromium says ``HeadlessChrome``; a person's browser does not. Its client hints
    (``sec-ch-ua``) name only ``Chromium``, which agrees with this string, so nothing else needs
    changing for the browser to look like a person's.
    """
    major = version.split(".", 1)[0] or "0"
    platform = "X11; Linux x86_64"
    engine = "AppleWebKit/537.36 (KHTML, like Gecko)"
    return f"Mozilla/5.0 ({platform}) {engine} Chrome/{major}.0.0.0 Safari/537.36"


# ---- simulated addresses ---------------------------------------------------------------------


# Addresses come from the same drawing rules as the HTTP actors' (``addresses.py``).
hosting_address = addresses.hosting_address
residential_address = addresses.residential_address


# ---- child processes -------------------------------------------------------------------------


@dataclass
class ProgramRun:
    """How a child program ended."""

    returncode: int | None
    """None when it had to be ended at its deadline."""
    timed_out: bool
    elapsed_s: float


async def run_program(
    argv: list[str],
    deadline: float,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdout: Path | None = None,
    grace_s: float = GRACE_S,
) -> ProgramRun:
    """Run ``argv`` in its own process group until it exits or ``deadline`` + ``grace_s``.

    At the deadline the group gets SIGTERM, then SIGKILL ``grace_s`` later if still there. The
    group is always killed at the end (also on normal exit and on cancellation), so helpers
    the program forked do not linger. Output goes to ``stdout`` (stderr with it) or nowhere.
    """
    started = time.monotonic()
    out = open(stdout, "wb") if stdout else None  # noqa: SIM115 (closed in finally)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out if out else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.STDOUT if out else asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so we can end all of it
        )
        timed_out = False
        try:
            try:
                await asyncio.wait_for(process.wait(), timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                timed_out = True
                _signal_group(process.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), timeout=grace_s)
                except TimeoutError:
                    _signal_group(process.pid, signal.SIGKILL)
                    await process.wait()
        finally:
            # Normal exit, timeout or cancellation: nothing of the group survives.
            _signal_group(process.pid, signal.SIGKILL)
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.shield(process.wait())
        return ProgramRun(
            returncode=None if timed_out else process.returncode,
            timed_out=timed_out,
            elapsed_s=time.monotonic() - started,
        )
    finally:
        if out:
            out.close()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
