"""`scrapewarden demo`: the people site behind scrapewarden, with people and scrapers at it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table


@click.command()
@click.option("--duration", default=30.0, show_default=True, help="Seconds of traffic (an upper bound).")
@click.option("--seed", default=7, show_default=True, help="Seed for the clients' random choices.")
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write results here."
)
@click.option(
    "--serve", is_flag=True, help="Afterwards keep the site up for you to click around (Ctrl-C stops)."
)
@click.option(
    "--state",
    envvar="SCRAPEWARDEN_STATE",
    default="memory://",
    show_default=True,
    help="Where bans and events go (memory://, sqlite:///path.db).",
)
def demo(duration: float, seed: int, json_path: Path | None, serve: bool, state: str) -> None:
    """Start a people site behind scrapewarden, run people and scrapers against it, score them."""
    from ..demo.run import free_port, run_demo
    from ..demo.site import protected_app
    from ..warden import Warden

    console = Console()
    console.print(f"[bold]scrapewarden demo[/]: {duration:.0f} s of traffic against a protected people site")
    with console.status("people and scrapers at work…") as status:
        results = run_demo(
            duration=duration, seed=seed, state=state, progress=lambda m: status.update(escape(m))
        )
    table = Table(title="Who got what")
    for column in ("actor", "kind", "requests", "records received", "before first refusal", "outcome"):
        table.add_column(column)
    for actor in results["actors"]:  # type: ignore[union-attr]
        table.add_row(
            escape(actor["name"]),
            actor["kind"],
            str(actor["requests"]),
            str(actor["records_exposed"]),
            str(actor["records_before_first_action"]),
            actor["outcome"],
        )
    console.print(table)
    humans = results["humans"]
    console.print(
        f"people: {humans['sessions']} sessions, {humans['challenged']} challenged, "  # type: ignore[index]
        f"{humans['throttled']} throttled, {humans['blocked']} blocked"  # type: ignore[index]
    )
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2))
        console.print(f"results written to {escape(str(json_path))}")
    if serve:
        from ..demo.run import serve as serve_app
        from ..demo.site import DEMO_POLICY

        with serve_app(protected_app(Warden(DEMO_POLICY, state=state)), free_port()) as base:
            console.print(f"the site is up at [bold]{base}/[/] — Ctrl-C to stop")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass


def register(group: click.Group) -> None:
    group.add_command(demo)
