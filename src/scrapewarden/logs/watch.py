"""``scrapewarden watch``: decide on a live log with the live engine and push bans out.

Each new line is parsed (combined, common or JSON lines; see :mod:`.fallback`), turned into request facts
and decided by a :class:`~scrapewarden.warden.Warden`, which stores the engine's automatic bans
in the state store with their escalating expiry. The bans written out are the store's active
bans of addresses and networks, so bans imposed by the other doors (middleware, proxy, the
``ban`` command) sharing that store go to the firewall too, and expired ones drop out. The
block list is rewritten (atomically) or the command run only when that set changes: nothing is
banned twice.

When the state store is Redis, each line is also counted on the shared per-actor counters
(:meth:`~scrapewarden.warden.Warden.decide_shared_sync`): a watcher on each host of a fleet, each
reading its own host's log, holds a client to one budget, as the middleware and proxy do.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..warden import Warden
from .bans_out import render
from .fallback import LineParser
from .live import facts_from_row
from .tail import Tail

log = logging.getLogger("scrapewarden.watch")


@dataclass
class WatchStats:
    lines: int = 0
    bad_lines: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    pushes: int = 0
    banned: int = 0


class Watcher:
    def __init__(
        self,
        warden: Warden,
        tail: Tail,
        ban_format: str,
        *,
        out: Path | None = None,
        command: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if out is None and command is None:
            raise ValueError("watch needs --out FILE or --exec COMMAND")
        self.warden = warden
        self.tail = tail
        self.ban_format = ban_format
        self.out = out
        self.command = command
        self.clock = clock
        self.stats = WatchStats()
        self._pushed: frozenset[str] | None = None
        self._parse = LineParser()

    def step(self) -> int:
        """Read and decide on new lines, then push the ban list if it changed. Returns lines read."""
        lines = self.tail.poll()
        for text in lines:
            if not text.strip():
                continue
            self.stats.lines += 1
            row = self._parse(text)
            if row is None:
                self.stats.bad_lines += 1
                continue
            # On Redis state the line counts on the shared per-actor counters (deadline, then
            # local), so watchers on every host of a fleet hold a client to one budget.
            decision = self.warden.decide_shared_sync(facts_from_row(row))
            label = decision.action.label
            self.stats.decisions[label] = self.stats.decisions.get(label, 0) + 1
        self.push()
        return len(lines)

    def active(self) -> frozenset[str]:
        """Addresses and networks banned in the store right now."""
        now = self.clock()
        return frozenset(b.value for b in self.warden.store.list_bans(now) if b.kind in ("ip", "network"))

    def push(self) -> bool:
        self.warden.store.flush()
        banned = self.active()
        if banned == self._pushed:
            return False
        text = render(sorted(banned), self.ban_format, comment=f"scrapewarden watch: {len(banned)} banned")
        target = self.out
        if target is None:
            handle, name = tempfile.mkstemp(prefix="scrapewarden-bans-")
            os.close(handle)
            target = Path(name)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(target)  # atomic: a reader never sees half a list
        if self.command:
            cmd = self.command.replace("{file}", shlex.quote(str(target)))
            done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                # Keep the old state so the next step tries again.
                log.error("ban command failed (%s): %s", done.returncode, done.stderr[-300:])
                return False
        self._pushed = banned
        self.stats.pushes += 1
        self.stats.banned = len(banned)
        return True

    def run(self, interval: float = 0.5, *, duration: float | None = None) -> WatchStats:
        """Poll until interrupted (or for ``duration`` seconds)."""
        end = None if duration is None else time.monotonic() + duration
        while end is None or time.monotonic() < end:
            if not self.step():
                time.sleep(interval)
        return self.stats
