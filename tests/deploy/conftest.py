"""Fixtures for the deploy tests live in deploy_helpers.py (test modules import its helpers)."""

from deploy_helpers import browser, stacks, upstream

__all__ = ["browser", "stacks", "upstream"]
