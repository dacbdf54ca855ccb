"""Which actors have *every* request recorded, allowed ones included, so a replay can see them.

The event trail holds refusals (throttle, challenge, block). A draft policy replayed over it
cannot show what it would newly refuse among requests that were always allowed. So a share of
actors (``[privacy] record_allowed_share``) is picked, and every request of theirs is recorded,
each event tagged :func:`tag`. The pick is by address, through a keyed hash of the address's
pseudonym (:meth:`~.pseudonym.Pseudonymizer.unit`): the same address is always in or always out
(so a sampled actor's whole sequence is kept, and per-address budgets replay as they ran), and
without the key nobody can tell which addresses are watched.

A replay over the tagged events covers that share of addresses completely; its counts divided
by the share estimate all traffic (:func:`share_of` reads the share back from a tag).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable

from .allows import OPERATOR_ALLOW
from .pseudonym import Pseudonymizer

TAG = "sampled share="
"""Reason added to every event of a sampled address, followed by the share: ``sampled share=0.05``."""


def sample_point(pseudonymizer: Pseudonymizer, address_pseudonym: str) -> float:
    """The address's fixed point in [0, 1): it is in every sample of a larger share."""
    return pseudonymizer.unit("sample", address_pseudonym)


def in_sample(pseudonymizer: Pseudonymizer, address_pseudonym: str, share: float) -> bool:
    """True if the address whose pseudonym is ``address_pseudonym`` is in a ``share`` sample."""
    return share > 0 and (share >= 1 or sample_point(pseudonymizer, address_pseudonym) < share)


ALLOWED = "allow"
"""The action of a sampled allowed request's event. Figures of *refusals* (the overview, the
summary, the compliance figures) skip such events: they are a sample, not a count."""


def sample_only(action: str, reasons: Iterable[str]) -> bool:
    """True for an event recorded only because its address is sampled: an allowed request no
    operator allow let through. Figures of refusals skip these; an allow that overrode a refusal
    (:mod:`.allows`) is the operator's decision and stays in them."""
    return action == ALLOWED and not any(reason.startswith(OPERATOR_ALLOW) for reason in reasons)


def tag(share: float) -> str:
    return f"{TAG}{share:g}"


def share_of(reasons: Iterable[str]) -> float | None:
    """The share in a sampling tag among ``reasons``; None if the event was not sampled."""
    for reason in reasons:
        if reason.startswith(TAG):
            try:
                share = float(reason[len(TAG) :])
            except ValueError:
                return None
            return share if 0 < share <= 1 else None
    return None


def is_tag(reason: str) -> bool:
    return reason.startswith(TAG)
