"""Defensive copies, so a caller mutating a returned object cannot change what a store holds."""

from __future__ import annotations

import dataclasses

from .base import BAN_KINDS, ROLES, Allow, ApiToken, Ban, Event, User


def copy_ban(ban: Ban) -> Ban:
    # The constructor, not dataclasses.replace: several times faster, and a Redis store copies
    # every ban whenever the shared list changes.
    return Ban(ban.kind, ban.value, ban.created, ban.expires, ban.reason, ban.offences, ban.source)


def copy_allow(allow: Allow) -> Allow:
    return Allow(allow.kind, allow.value, allow.created, allow.expires, allow.reason, allow.by)


def copy_event(event: Event, *, new_id: int | None = None) -> Event:
    return dataclasses.replace(
        event,
        reasons=list(event.reasons),
        id=event.id if new_id is None else new_id,
    )


def check_kind(kind: str) -> None:
    # Ban.kind is a Literal, but nothing enforces it at run time; a typo must not store junk.
    if kind not in BAN_KINDS:
        raise ValueError(f"unknown ban kind {kind!r}; expected one of {', '.join(BAN_KINDS)}")


def copy_user(user: User) -> User:
    return dataclasses.replace(user)


def copy_token(token: ApiToken) -> ApiToken:
    return dataclasses.replace(token)


def check_user(user: User) -> None:
    # A role outside the list would grant nothing, or (a typo of "admin") confuse an operator.
    if user.role not in ROLES:
        raise ValueError(f"unknown role {user.role!r}; expected one of {', '.join(ROLES)}")
    if not user.name:
        raise ValueError("a user needs a name")
