"""``haprotect lab``: a real local HA lab to try haprotect on (and to test it with)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from haprotect.cli.app import Group, app, reports_errors, stderr, stdout

if TYPE_CHECKING:
    from haprotect.lab import LabEvent, LabStatus
    from haprotect.lab.report import ReplicationPeer

DEFAULT_DIR = Path("/tmp/haprotect-lab")

lab_app = typer.Typer(
    name="lab",
    cls=Group,
    help="A real local HA lab: PostgreSQL primary and hot standby, an orders API with a "
    "write-behind buffer, a web front end with uploads, and its Pacemaker CIB.",
    no_args_is_help=True,
)
app.add_typer(lab_app, name="lab")

DirOption = Annotated[
    Path,
    typer.Option(
        "--dir",
        envvar="HAPROTECT_LAB_DIR",
        help="The lab directory (state, data, logs, sockets).",
        show_default=True,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _event(event: LabEvent) -> None:
    stderr.print(f"lab: {event.message}", markup=False, highlight=False)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@lab_app.command("up")
@reports_errors
def up_command(
    directory: DirOption = DEFAULT_DIR,
    flush_interval: Annotated[
        float, typer.Option(help="Seconds between the application tier's background flushes.")
    ] = 2.0,
    volume: Annotated[
        str,
        typer.Option(
            help="Where a new lab's shared directory lives: 'xfs', a loop-mounted XFS image "
            "with reflinks (needs root and xfsprogs), so the quiesced backup's cut of it shares "
            "blocks instead of copying them; 'none', a plain directory; 'auto', xfs where it "
            "can be made, else none. An existing lab keeps what it was made with.",
        ),
    ] = "auto",
    web_gate: Annotated[
        str | None,
        typer.Option(
            help="What stands in front of the web tier: 'http', haprotect's HTTP gate (a new "
            "lab's default), or 'haproxy', Debian's HAProxy, described in the lab's CIB by "
            "HAProxy's resource agent so the policy holds it with the haproxy quiescer. "
            "An existing lab keeps its gate unless this is given.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create the lab if needed and start whatever is not running (idempotent).

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed.
    """
    from haprotect.lab import Lab

    chosen = None if volume == "none" else volume
    lab = Lab(
        directory,
        on_event=_event,
        flush_interval=flush_interval,
        volume=chosen,
        web_gate=web_gate,
    )
    status = lab.up()
    _render(status, as_json)


@lab_app.command("status")
@reports_errors
def status_command(directory: DirOption = DEFAULT_DIR, as_json: JsonOption = False) -> None:
    """Health of every node and tier, who is primary, and the replication state.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed.
    """
    from haprotect.lab import Lab

    _render(Lab(directory).status(), as_json)


@lab_app.command("failover")
@reports_errors
def failover_command(directory: DirOption = DEFAULT_DIR, as_json: JsonOption = False) -> None:
    """Promote the standby and make the old primary its standby; state and CIB follow.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed.
    """
    from haprotect.lab import Lab

    _render(Lab(directory, on_event=_event).failover(), as_json)


@lab_app.command("load")
@reports_errors
def load_command(
    directory: DirOption = DEFAULT_DIR,
    seconds: Annotated[float, typer.Option(help="How long to send requests.")] = 10.0,
    rate: Annotated[float, typer.Option(help="Requests a second.")] = 10.0,
    upload_every: Annotated[
        int, typer.Option(help="Every Nth request is an upload (0: orders only).")
    ] = 5,
    verify: Annotated[
        bool, typer.Option(help="Flush the application and check everything acknowledged.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Send orders and uploads through the web tier, journaling what the lab acknowledged.

    Exit status: 0 success, 1 data missing, 2 bad usage, 3 unreadable input,
    4 component failed.
    """
    from haprotect.lab import Lab, verify_acknowledged

    lab = Lab(directory, on_event=_event)
    report = lab.load(seconds=seconds, rate=rate, upload_every=upload_every)
    checked = verify_acknowledged(lab) if verify else None
    if as_json:
        load = {**asdict(report), "acknowledged": report.acknowledged}
        _print_json({"load": load, "verify": checked.to_json() if checked else None})
        return
    stdout.print(
        f"{report.acknowledged} requests acknowledged in {report.seconds:.1f}s "
        f"({report.orders} orders, {report.uploads} uploads), {report.failures} failed; "
        f"journal: {lab.journal_path}"
    )
    for error in report.errors:
        stdout.print(f"  failure: {error}", markup=False)
    if checked is not None:
        stdout.print(checked.summary(), markup=False)
        if not checked.ok:
            raise typer.Exit(1)


@lab_app.command("verify")
@reports_errors
def verify_command(
    directory: DirOption = DEFAULT_DIR,
    until: Annotated[
        float | None,
        typer.Option(
            help="Only requests acknowledged up to this Unix time (those a backup then holds)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Flush the application, then check every acknowledged order and upload is still there.

    Exit status: 0 all there, 1 data missing, 2 bad usage, 3 unreadable input,
    4 component failed.
    """
    from haprotect.lab import Lab, verify_acknowledged

    checked = verify_acknowledged(Lab(directory), until=until)
    if as_json:
        _print_json(checked.to_json())
    else:
        stdout.print(checked.summary(), markup=False)
    if not checked.ok:
        raise typer.Exit(1)


@lab_app.command("down")
@reports_errors
def down_command(
    directory: DirOption = DEFAULT_DIR,
    purge: Annotated[bool, typer.Option(help="Also delete the lab directory.")] = False,
) -> None:
    """Stop every lab process (the data stays unless --purge).

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed.
    """
    from haprotect.lab import Lab

    Lab(directory, on_event=_event).down(purge=purge)


def _render(status: LabStatus, as_json: bool) -> None:
    from rich.table import Table

    if as_json:
        _print_json(status.to_json())
        return
    nodes = Table(title="Database tier", title_justify="left")
    for column in ("node", "role", "port", "pid", "WAL", "replication"):
        nodes.add_column(column)
    for node in status.nodes:
        role = node.role or ("stopped" if not node.running else "no answer")
        if node.role and node.role != node.expected_role:
            role += f" (expected {node.expected_role})"
        nodes.add_row(
            node.name,
            role,
            str(node.port),
            str(node.pid or "-"),
            node.wal_lsn or "-",
            _replication(node.replicas, node.wal_receiver, node.receive_lsn, node.error),
        )
    stdout.print(nodes)
    tiers = Table(title="Application and web tiers", title_justify="left")
    for column in ("tier", "url", "pid", "health"):
        tiers.add_column(column)
    for tier in status.tiers:
        health = "stopped" if not tier.running else ("ok" if tier.healthy else "unhealthy")
        if tier.name == "application" and tier.running:
            health += f", {tier.detail.get('buffered', '?')} orders buffered"
        tiers.add_row(tier.name, tier.url, str(tier.pid or "-"), health)
    stdout.print(tiers)
    stdout.print(f"primary {status.primary}, standby {status.standby}; CIB {status.cib}")
    verdict = "[green]healthy[/]" if status.healthy else "[red]not healthy[/]"
    stdout.print(f"lab {status.dir}: {verdict}")


def _replication(
    replicas: tuple[ReplicationPeer, ...],
    receiver: str | None,
    received: str | None,
    error: str | None,
) -> str:
    if error:
        return error
    if replicas:
        return "\n".join(
            f"-> {p.application_name}: {p.state}, replayed {p.replay_lsn or '-'}"
            f" (lag {p.replay_lag_bytes if p.replay_lag_bytes is not None else '?'} B)"
            for p in replicas
        )
    if receiver:
        return f"<- {receiver}, received {received or '-'}"
    return "-"
