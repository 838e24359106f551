"""``haprotect status``: is every application's data protected as its policy promises?"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from haprotect.cli.app import app, reports_errors, stdout

if TYPE_CHECKING:
    from haprotect.service.status import DataSetStatus, Overview

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The service's configuration (default $HAPROTECT_CONFIG, else "
        "/etc/haprotect/service.yaml when present, else the built-in default).",
    ),
]


@app.command("status")
@reports_errors
def status_command(
    config_file: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show the protection of each application and data set, from the service's catalog.

    For each data set: its last complete set and its age, whether the RPO
    its schedule promises is kept, the next run, how many copies hold the
    last set against how many the policy asks for, the last run's outcome,
    and drift. Reads the catalog of the service (its configuration names
    it); the service need not be running. Exits 1 when an RPO is breached.

    Exit status: 0 every RPO kept, 1 an RPO breached, 2 bad usage,
    3 unreadable input.
    """
    from haprotect.catalog import Catalog
    from haprotect.service.config import load_config
    from haprotect.service.daemon import Service

    config = load_config(config_file)
    with Catalog.open(config.catalog_url) as catalog:
        overview = Service(config, catalog).overview()
    if as_json:
        sys.stdout.write(json.dumps(overview_json(overview), indent=2) + "\n")
    else:
        print_overview(overview)
    if overview.breached:
        raise typer.Exit(1)


def overview_json(overview: Overview) -> dict[str, Any]:
    return {
        "at": overview.at.isoformat(),
        "datasets": [
            {
                "cluster": d.cluster,
                "application": d.application,
                "dataset": d.dataset,
                "job": d.job,
                "schedule": d.schedule,
                "repository": d.repository,
                "last_complete_set": d.last_complete.id if d.last_complete else None,
                "last_complete_time": d.last_complete.time.isoformat() if d.last_complete else None,
                "rpo_breached": d.rpo.breached,
                "rpo_deadline": d.rpo.deadline.isoformat() if d.rpo.deadline else None,
                "next_run": d.next_run.isoformat() if d.next_run else None,
                "copies": list(d.copies),
                "copies_wanted": d.copies_wanted,
                "last_run": d.last_run.outcome.value if d.last_run else None,
                "drift": list(d.drift),
            }
            for d in overview.datasets
        ],
    }


def print_overview(overview: Overview) -> None:
    from rich.table import Table

    if not overview.datasets:
        stdout.print(
            "No approved policy: apply one with `haprotect policy apply` and approve it.",
            markup=False,
        )
        return
    table = Table(
        "Application",
        "Data set",
        "Last complete set",
        "RPO",
        "Next run",
        "Copies",
        "Last run",
        box=None,
        padding=(0, 1),
    )
    for d in overview.datasets:
        table.add_row(
            d.application or "-",
            f"{d.cluster}/{d.dataset}",
            _last_set(d, overview.at),
            "[red]breached[/]" if d.rpo.breached else "[green]kept[/]",
            _when(d.next_run, overview.at),
            f"{d.copies_made}/{d.copies_wanted}",
            d.last_run.outcome.value.replace("_", " ") if d.last_run else "never ran",
        )
    stdout.print(table)
    breached = len(overview.breached)
    if breached:
        stdout.print(f"[red]{breached} data set(s) not protected as their schedule promises[/]")


def _last_set(d: DataSetStatus, now: datetime) -> str:
    if d.last_complete is None:
        return "none"
    return f"{d.last_complete.id[:8]} ({_age(now - d.last_complete.time)} ago)"


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    return "now" if moment <= now else f"in {_age(moment - now)}"


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
