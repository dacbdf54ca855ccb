"""The ``scrapewarden`` command line. Each sub-command lives in its own module and registers here."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="scrapewarden")
def main() -> None:
    """scrapewarden: stop bulk scraping of personal data, keep people browsing."""


def _register() -> None:
    # Sub-command modules are imported lazily-ish here so `scrapewarden --help` stays fast
    # and one broken optional module cannot take the whole CLI down.
    import importlib

    for name in (
        "policy_cmds",
        "state_cmds",
        "allow_cmds",
        "bench_cmds",
        "demo_cmds",
        "serve_cmds",
        "proxy_cmds",
        "analyze_cmds",
        "audit_cmds",
        "incident_cmds",
        "dashboard_cmds",
        "report_cmds",
        "replay_cmds",
    ):
        try:
            module = importlib.import_module(f"scrapewarden.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"scrapewarden.cli.{name}":
                continue
            raise
        module.register(main)


_register()
