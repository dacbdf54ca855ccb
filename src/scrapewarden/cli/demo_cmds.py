"""`scrapewarden demo` and `scrapewarden bench scenarios`: the scenario suite, live and scored."""

from __future__ import annotations

import json
import signal
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text


def scenario_options(duration: float, persons: int) -> Any:
    """Options shared by `demo` and `bench scenarios` (only the defaults differ)."""

    def wrap(fn: Any) -> Any:
        options = [
            click.option("--duration", default=duration, show_default=True, help="Seconds of traffic."),
            click.option("--seed", default=7, show_default=True, help="Seed of people, site and traffic."),
            click.option(
                "--people", "site_people", default=20_000, show_default=True, help="People on the site."
            ),
            click.option("--persons", default=persons, show_default=True, help="People browsing over HTTP."),
            click.option(
                "--browser-people", default=3, show_default=True, help="People browsing in Chromium."
            ),
            click.option(
                "--programs/--no-programs",
                default=True,
                show_default=True,
                help="Also run Chromium, Scrapy, wget and httrack where installed.",
            ),
            click.option(
                "--policy",
                type=click.Path(exists=True, dir_okay=False),
                help="Policy for the protected site.",
            ),
            click.option(
                "--state",
                envvar="SCRAPEWARDEN_STATE",
                default=None,
                help="Where the protected site keeps bans and events "
                "(default: the policy's state key, else memory://).",
            ),
            click.option(
                "--under-attack",
                is_flag=True,
                help="Run the protected site under attack: everyone without clearance is challenged.",
            ),
            click.option(
                "--json",
                "json_path",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Also write the scored results here.",
            ),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return wrap


def _config(**kw: Any) -> Any:
    from ..demo.scenarios import ScenarioConfig
    from ..demo.site import demo_policy
    from .preflight import check_door

    check_door(kw["policy"] or demo_policy(), kw["state"])
    return ScenarioConfig(
        duration=kw["duration"],
        seed=kw["seed"],
        people=kw["site_people"],
        persons=kw["persons"],
        browser_people=kw["browser_people"],
        programs=kw["programs"],
        policy=kw["policy"],
        state=kw["state"],
        under_attack=kw["under_attack"],
    )


def run_and_report(
    config: Any, json_path: Path | None, console: Console, running: dict[str, str] | None = None
) -> dict[str, Any]:
    from ..demo.scenarios import run_scenarios

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("starting the sites", total=config.duration, detail="")

        def progress(runs: list[Any], elapsed: float) -> None:
            detail = "  ".join(f"{r.regime}: {r.finished}/{r.planned} actors done" for r in runs)
            bar.update(task, completed=min(elapsed, config.duration), description="traffic", detail=detail)

        report = run_scenarios(config, progress, running)
    print_report(report, console)
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2))
        console.print(Text(f"results written to {json_path}"))
    return report


def print_report(report: dict[str, Any], console: Console) -> None:
    baselines = report.get("baselines", {})
    columns = [
        ("protected", report),
        *((name, baselines[name]) for name in ("per_ip_limit", "none") if name in baselines),
    ]
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for column, summary in columns:
        for actor in summary["actors"]:
            rows.setdefault(actor["name"], {})[column] = actor
    table = Table(title=f"records received by each client ({report['records_total']:,} people on the site)")
    table.add_column("client")
    table.add_column("kind")
    for column, _ in columns:
        table.add_column(f"{column}\nrecords / outcome", justify="right")
    for name, cells in sorted(rows.items(), key=lambda item: (next(iter(item[1].values()))["kind"], item[0])):
        kind = next(iter(cells.values()))["kind"]
        shown = [
            f"{cells[c]['records_exposed']:,} / {cells[c]['outcome']}" if c in cells else "-"
            for c, _ in columns
        ]
        table.add_row(Text(name), kind, *shown)
    console.print(table)
    summary = Table(title="summary")
    summary.add_column("")
    for column, _ in columns:
        summary.add_column(column, justify="right")
    summary.add_row(
        "records leaked to scrapers", *(f"{s['scrapers']['records_leaked_total']:,}" for _, s in columns)
    )
    summary.add_row("median per scraper", *(str(s["scrapers"]["median_records_leaked"]) for _, s in columns))
    summary.add_row("people sessions", *(str(s["humans"]["sessions"]) for _, s in columns))
    for what in ("blocked", "challenged", "throttled"):
        summary.add_row(f"people {what}", *(str(s["humans"][what]) for _, s in columns))
    summary.add_row(
        "people page p50 / p99 ms",
        *(f"{s['humans']['latency_ms_p50']} / {s['humans']['latency_ms_p99']}" for _, s in columns),
    )
    console.print(summary)
    goals = report.get("goals")
    if goals:
        table = Table(title="goals (measured, never tuned to)")
        table.add_column("goal")
        table.add_column("measured", justify="right")
        table.add_column("target")
        for name, goal in goals.items():
            if name == "added_latency_ms":
                table.add_row("added latency p50 / p99 (ms)", f"{goal['p50']} / {goal['p99']}", "")
            else:
                table.add_row(name.replace("_", " "), str(goal["value"]), goal["goal"])
        console.print(table)


@click.command()
@scenario_options(duration=60.0, persons=40)
@click.option(
    "--serve",
    is_flag=True,
    help="Afterwards keep the protected site (and its dashboard) up for you (Ctrl-C stops).",
)
@click.option(
    "--dashboard",
    "dashboard_listen",
    default="127.0.0.1:8090",
    show_default=True,
    metavar="HOST:PORT",
    help="Serve the dashboard over the protected site's store while the traffic runs (loopback "
    "only; another port when this one is taken). A one-off admin with a random password is "
    "printed once.",
)
@click.option("--no-dashboard", is_flag=True, help="Do not serve the dashboard.")
def demo(serve: bool, json_path: Path | None, dashboard_listen: str, no_dashboard: bool, **kw: Any) -> None:
    """Start a small social network behind scrapewarden, send people and scrapers at it, score them.

    The same traffic also runs against the site with a per-address rate limit (like nginx
    limit_req) and with no protection at all, so the difference is visible. The dashboard
    watches the protected site live.
    """
    from ..demo.dashboard import DashboardAddressError, new_login
    from ..demo.scenarios import site_process

    console = Console()
    config = _config(**kw)
    # A SIGTERM (a service manager, a test) stops the demo as Ctrl-C does: the sites it started
    # in their own sessions are stopped on the way out instead of being left running.
    signal.signal(signal.SIGTERM, _interrupt)
    login = None
    if not no_dashboard:
        try:
            login = new_login(dashboard_listen)
        except (DashboardAddressError, ValueError) as exc:
            raise click.BadParameter(str(exc), param_hint="'--dashboard'") from exc
    console.print(
        f"[bold]scrapewarden demo[/]: {config.duration:.0f} s of people and scrapers against a "
        f"{config.people:,}-person social network, protected / per-address limit / unprotected"
    )
    with ExitStack() as stack:
        running: dict[str, str] = {}
        if login is not None:
            running["protected"] = stack.enter_context(site_process("protected", config, login))
            _print_login(login, console)
        run_and_report(config, json_path, console, running)
        _incidents_hint(config, console)
        if not serve:
            return
        base = running.get("protected") or stack.enter_context(site_process("protected", config))
        console.print(f"the protected site is up at [bold]{base}/[/] — Ctrl-C to stop")
        if login is not None:
            console.print(Text(f"the dashboard is still at {login.url} (user {login.user})"))
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _print_login(login: Any, console: Console) -> None:
    """The dashboard's address and one-off login, on the console only (never logged)."""
    console.print(Text.assemble(("dashboard: ", "bold"), login.url), soft_wrap=True)
    console.print(Text(f"  user:     {login.user}"), soft_wrap=True)
    console.print(Text(f"  password: {login.password}"), soft_wrap=True)
    console.print(
        Text(
            "  (a one-off admin for this demo only, removed when the demo stops; "
            "a real dashboard gets its users from `scrapewarden users add`)"
        )
    )


def _incidents_hint(config: Any, console: Console) -> None:
    """What the protected site filed as incidents, and the commands that take it from there."""
    state = config.state or ""
    if not state or state.strip().lower().startswith("memory:"):
        console.print(
            Text(
                "incidents were kept in the protected site's memory only; run with "
                "--state sqlite:///demo.db to keep them, then: scrapewarden incidents list --state sqlite:///demo.db"
            )
        )
        return
    from ..incidents.book import IncidentBook
    from ..state.url import open_state

    try:
        with open_state(state) as store:
            found = IncidentBook(store).list()
    except Exception as exc:  # the report above stands whatever the store says
        console.print(Text(f"could not read incidents from {state}: {exc}"))
        return
    env = ""
    if (config.seed, config.people) != (7, 20_000):  # the demo lookup's defaults (demo/lookup.py)
        env = f"CIRCLES_SEED={config.seed} CIRCLES_PEOPLE={config.people} "
    policy = config.policy or demo_policy_path()
    console.print(Text(f"incidents in {state}: {len(found)}. Next:"))
    for line in (
        f"scrapewarden incidents list --state {state}",
        f"scrapewarden incidents show ID --state {state}",
        f"{env}scrapewarden incidents export ID --out bundle.zip --policy {policy} --state {state}",
    ):
        console.print(Text(f"  {line}"))


def demo_policy_path() -> str:
    from importlib import resources

    return str(resources.files("scrapewarden.demo").joinpath("policy.toml"))


def register(group: click.Group) -> None:
    group.add_command(demo)
