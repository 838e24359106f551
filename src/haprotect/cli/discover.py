"""``haprotect discover``: what a cluster makes highly available."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from haprotect.cli.app import app, reports_errors, stdout
from haprotect.cli.options import NoCliOpt, SourceArg

if TYPE_CHECKING:
    from haprotect.model.topology import Cluster, Topology


@app.command("discover")
@reports_errors
def discover_command(
    source: SourceArg,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the haprotect.topology/v1 JSON form.")
    ] = False,
    no_cli: NoCliOpt = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each cluster tool.")] = 60.0,
) -> None:
    """Query a cluster and show its nodes, HA data sets and applications.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed,
    5 plug-in missing.
    """
    from haprotect.model.topology_json import topology_to_json
    from haprotect.sources import DiscoverOptions, discover

    topology = discover(source, DiscoverOptions(use_cli=not no_cli, timeout_seconds=timeout))
    if as_json:
        sys.stdout.write(json.dumps(topology_to_json(topology), indent=2) + "\n")
        return
    render_topology(topology)


def render_topology(topology: Topology) -> None:
    for cluster in topology.clusters:
        _render_cluster(cluster)


def _render_cluster(cluster: Cluster) -> None:
    from rich.table import Table

    nodes = ", ".join(f"{n.name}{'' if n.online else ' (offline)'}" for n in cluster.nodes)
    stdout.print(f"[bold]{cluster.name}[/] ({cluster.manager.value}): {nodes or 'no nodes'}")
    stdout.print(
        f"{len(cluster.resources)} resources, {len(cluster.datasets)} data sets, "
        f"{len(cluster.applications)} applications"
    )
    if cluster.datasets:
        table = Table(title="Data sets", title_justify="left")
        for column in ("data set", "kind", "HA", "replication", "primary", "standbys"):
            table.add_column(column)
        table.add_column("location", overflow="fold")
        for ds in cluster.datasets:
            table.add_row(
                ds.id,
                ds.kind,
                "yes" if ds.ha else "no",
                ds.replication.value,
                ds.primary or "-",
                ", ".join(ds.standbys) or "-",
                "\n".join(f"{k}={v}" for k, v in ds.location.items()),
            )
        stdout.print(table)
    for application in cluster.applications:
        stdout.print(f"application [bold]{application.name}[/] (bottom-up):")
        for tier in application.tiers:
            needs = f" needs {', '.join(tier.depends_on)}" if tier.depends_on else ""
            data = f" data: {', '.join(tier.datasets)}" if tier.datasets else ""
            stdout.print(f"  {tier.name}: {', '.join(tier.resources)}{data}{needs}")
