"""The dashboard follows its policy file without a restart.

The dashboard's own Warden holds the policy that the incident pages (people lookup, letters'
reply days), the actor search, the pseudonymiser and the replay's "current" side use. When the
file given with ``--policy`` changes - published from the Policy page, or edited on disk - the
next page view or API call notices (a ``stat``, so it costs next to nothing), reads the file and,
when its text differs from the one loaded, puts a Warden for the new policy in place, as the
proxy does on SIGHUP: same store, and the engine's bans and counters carried over.

A file that does not load is logged and left alone; the dashboard keeps the policy it has until
the file changes again. A dashboard embedded in an application (``create_app(warden)``) shows
that application's Warden, which is the policy really in force there, and does not follow the
file: the application reloads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..policy_file import PolicyError, policy_from_text
from ..warden import Warden, build_engine

if TYPE_CHECKING:
    from .app import Dashboard

log = logging.getLogger("scrapewarden")

Stamp = tuple[int, int, int]
"""A file's modification time (ns), size and inode: a publish replaces the file, a new inode."""


def stamp(path: Path) -> Stamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PolicyFollower:
    """Remembers what the policy file looked like when it was last read."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.seen: Stamp | None = stamp(path) if path is not None else None
        self.loaded = ""
        """The SHA-256 of the text in force (empty: not read by this follower yet)."""
        if path is not None:
            with contextlib.suppress(OSError):  # unreadable: the first change read loads it
                self.loaded = _digest(path.read_text(encoding="utf-8-sig"))
        self.error = ""
        """Why the file last failed to load (empty when it loaded)."""
        self.lock = threading.Lock()

    def changed(self) -> bool:
        return self.path is not None and stamp(self.path) != self.seen


def follow_policy(dash: Dashboard) -> bool:
    """Reload the dashboard's policy when its file changed since it was last read; True when a
    new policy is now in force. Called on every page view and API call."""
    follower = dash.policy_follower
    if not dash.owns_warden or follower.path is None or not follower.changed():
        return False
    with follower.lock:  # one thread reloads; the others find the stamp already seen
        path = follower.path
        now = stamp(path)
        if now == follower.seen:
            return False
        follower.seen = now
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            follower.error = f"cannot read {path}: {exc.strerror or exc}"
            log.error("dashboard: %s; keeping the current policy", follower.error)
            return False
        digest = _digest(text)
        if digest == follower.loaded:  # touched, or back to the text in force
            follower.error = ""
            return False
        try:
            policy = policy_from_text(text, source=str(path))
        except PolicyError as exc:
            follower.error = str(exc)
            log.error("dashboard: policy reload failed, keeping the current policy: %s", exc)
            return False
        old = dash.warden
        try:
            new = Warden(policy, state=old.store, engine=build_engine(policy), clock=old.clock)
        except Exception as exc:  # e.g. a list it names cannot be read: keep what works
            follower.error = f"the policy loads but cannot be put in force: {exc}"
            log.exception("dashboard: policy reload failed, keeping the current policy")
            return False
        new.engine.adopt_state(old.engine)
        dash.warden = new
        follower.loaded, follower.error = digest, ""
    old.close(keep_store=True)  # the store is the new Warden's too
    log.warning("dashboard: policy reloaded from %s (mode: %s)", path, policy.mode)
    return True
