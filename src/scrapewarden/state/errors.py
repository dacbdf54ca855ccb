"""Errors raised by state stores and by :func:`scrapewarden.state.url.open_state`."""

from __future__ import annotations


class StateError(Exception):
    """A state store could not do what was asked (bad file, closed store, broken database)."""


class StateURLError(StateError, ValueError):
    """A state URL could not be understood. The message names the URL (password redacted)."""


class StateClosedError(StateError):
    """The store was used after :meth:`close`."""
