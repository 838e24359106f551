"""``haprotect snapshots``: the snapshot sets in a repository, with their tiers."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from haprotect.cli.app import app, reports_errors, stdout
from haprotect.cli.runs import JsonOpt, PasswordFileOpt, RepoOpt, open_or_init_repository
from haprotect.errors import UsageError
from haprotect.redact import display_url

if TYPE_CHECKING:
    from haprotect.model.plan import SnapshotSet


@app.command("snapshots")
@reports_errors
def snapshots_command(
    repo_url: RepoOpt = None,
    application: Annotated[
        str | None, typer.Option("--app", help="Only the sets of this application.")
    ] = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the snapshot sets in a repository (no catalog needed: the snapshots say it all).

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused.
    """
    from rich.markup import escape
    from rich.table import Table

    from haprotect.engine import list_sets

    if repo_url is None:
        raise UsageError("which repository?", hint="give --repo URL (or set HAPROTECT_REPOSITORY)")
    repo = open_or_init_repository(repo_url, password_file)
    found = [s for s in list_sets(repo) if application is None or s.application == application]
    if as_json:
        sys.stdout.write(json.dumps([set_to_json(s) for s in found], indent=2) + "\n")
        return
    if not found:
        stdout.print(
            f"no snapshot sets in {escape(display_url(repo_url))}"
            + (f" for {application}" if application else "")
        )
        return
    table = Table(title=f"Snapshot sets in {escape(display_url(repo_url))}", title_justify="left")
    for column in ("set", "started (UTC)", "name", "complete", "tiers (restore order)"):
        table.add_column(column)
    for s in found:
        table.add_row(s.id, f"{s.started:%Y-%m-%d %H:%M:%S}", _name(s), _complete(s), _tiers(s))
    stdout.print(table)
    if not all(s.complete for s in found):
        stdout.print(
            "A partial set is never 'latest': restore it by its id, for what it holds.",
            markup=False,
        )


def set_to_json(s: SnapshotSet) -> dict[str, object]:
    from haprotect.engine.events import to_plain

    body = to_plain(s)
    assert isinstance(body, dict)
    body["complete"] = s.complete
    body["partial_because"] = list(s.partial_because)
    body["missing"] = [f"{t}/{d}" for t, d in s.missing]
    return body


def _name(s: SnapshotSet) -> str:
    from rich.markup import escape

    return escape(s.name) + ("" if s.application else " (data set)")


def _complete(s: SnapshotSet) -> str:
    from rich.markup import escape

    if s.complete:
        return "[green]yes[/]"
    return "[yellow]no[/] (partial): " + escape("; ".join(s.partial_because))


def _tiers(s: SnapshotSet) -> str:
    from rich.markup import escape

    lines = []
    for name in s.restore_order:
        items = s.items_of(name)
        if not items:
            lines.append(f"{escape(name)}: -")
            continue
        parts = []
        for item in items:
            node = f"{item.node}, {item.role}" if item.node else "?"
            parts.append(f"{escape(item.dataset)} ({escape(node)}, {item.snapshot_id[:8]})")
        lines.append(f"{escape(name)}: " + ", ".join(parts))
    return "\n".join(lines)
