"""Reading and checking the audit log of any store, and naming who acts.

The chain itself (hashing, linking, what verification checks) is in
:mod:`scrapewarden.core.audit`; each store appends atomically (``StateStore.append_audit``).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator

from ..core.audit import AuditEntry, Verification, verify
from .base import StateStore

USER_ENV = "SCRAPEWARDEN_USER"
PAGE = 1000


def entries(store: StateStore, *, page: int = PAGE) -> Iterator[AuditEntry]:
    """Every stored entry, in stored order, a page at a time."""
    after = 0
    while True:
        got = store.audit_entries(after_seq=after, limit=page)
        yield from got
        if len(got) < page:
            return
        # Page on from the last seq read. A tampered chain's seqs may go backwards: still move on,
        # so listing a broken chain ends (verification stops at the first problem anyway).
        last = got[-1].seq
        after = last if last > after else after + len(got)


def verify_store(store: StateStore, *, expect_head: str | None = None) -> Verification:
    """Verify the store's whole chain. The head is read first, so entries appended while the
    chain is read do not count as a mismatch."""
    head = store.audit_head()
    return verify(entries(store), recorded_head=head, expect_head=expect_head)


def current_user() -> str:
    """Who a command acts as: ``SCRAPEWARDEN_USER``, else the login name."""
    name = os.environ.get(USER_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): still say something true
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
