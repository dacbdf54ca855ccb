"""Check a door's policy and state URL before it starts, so a mistake reads as one clear line.

The doors open their Warden (and with it the policy and the state store) deep inside a server
loop or a worker process, where a bad policy or state URL would end in a traceback. This runs
the same resolution first (``--state`` > ``SCRAPEWARDEN_STATE`` > the policy's ``state`` key >
``memory://``) and turns what is wrong into a :class:`click.ClickException`. Nothing connects
here; messages show state URLs with any password masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..core.policy import Policy


def check_door(policy: Policy | str | Path | None, state: str | None) -> None:
    """Raise :class:`click.ClickException` if the policy cannot load or the state URL is bad."""
    from ..policy_file import PolicyError
    from ..state.errors import StateURLError
    from ..state.url import ENV_VAR, check_state_url, choose_url
    from ..warden import resolve_policy

    try:
        resolved = resolve_policy(policy)
    except PolicyError as exc:
        raise click.ClickException(f"invalid policy:\n{exc}") from None
    url, source = choose_url(state, default=resolved.state, default_source="the policy's state key")
    try:
        check_state_url(url)
    except StateURLError as exc:
        named = source or f"--state (or {ENV_VAR})"
        raise click.ClickException(f"{named}: {exc}") from None
