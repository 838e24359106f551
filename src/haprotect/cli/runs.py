"""What the backup, snapshots and restore verbs share.

Opening the repository (its URL, its passphrase from ``HAPROTECT_PASSWORD``
or ``--password-file``), and rendering a run's events: rich progress on
stderr, or JSON lines on stdout with ``--json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from haprotect.cli.app import stderr
from haprotect.cli.repo_common import PASSWORD_ENV, passphrase, repository_store
from haprotect.engine.events import (
    Event,
    Issue,
    ItemFinished,
    ItemProgress,
    ItemStarted,
    Note,
    RunFinished,
    SetStarted,
    TierFinished,
    event_to_json,
)
from haprotect.model.result import ItemStatus, Result, Severity, Status
from haprotect.redact import display_url
from haprotect.repo import Repository
from haprotect.repo.errors import RepositoryNotFound

REPOSITORY_ENV = "HAPROTECT_REPOSITORY"

RepoOpt = Annotated[
    str | None,
    typer.Option(
        "--repo",
        envvar=REPOSITORY_ENV,
        help="Repository URL (file:///path, s3://bucket/prefix, or a path).",
        show_default=False,
    ),
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        envvar="HAPROTECT_PASSWORD_FILE",
        help=f"Read the repository passphrase from this file (default: ${PASSWORD_ENV}).",
    ),
]
InventoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        help="How to reach the nodes and where their data is (see docs/engine.md).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of progress.")]


def open_repository(url: str, password_file: Path | None, *, init: bool = False) -> Repository:
    """Open the repository at ``url``; create it first when ``init`` and it does not exist."""
    store = repository_store(url)
    secret = passphrase(password_file, url)
    try:
        return Repository.open(store, secret)
    except RepositoryNotFound:
        if not init:
            raise RepositoryNotFound(
                f"no haprotect repository at {display_url(url)}",
                hint="add --init to create it (the passphrase given protects it)",
            ) from None
    stderr.print(f"haprotect: creating a new repository at {display_url(url)}", markup=False)
    return Repository.init(store, secret)


class JsonLines:
    """Each event as one JSON object on stdout."""

    def emit(self, event: Event) -> None:
        sys.stdout.write(json.dumps(event_to_json(event), default=str) + "\n")
        sys.stdout.flush()


_MARKS = {
    ItemStatus.OK: "[green]ok[/]",
    ItemStatus.PARTIAL: "[yellow]partial[/]",
    ItemStatus.FAILED: "[red]failed[/]",
    ItemStatus.SKIPPED: "[yellow]skipped[/]",
}


class RichProgress:
    """Progress bars on stderr (when it is a terminal) and one line per step."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
            disable=not stderr.is_terminal,
        )
        self.tasks: dict[str, TaskID] = {}
        self.result: Result | None = None

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def _print(self, text: str, markup: bool = True) -> None:
        self.progress.console.print(text, markup=markup, highlight=False)

    def emit(self, event: Event) -> None:
        if isinstance(event, SetStarted):
            label = f"{event.name} (application)" if event.application else event.name
            where = display_url(event.repository)
            self._print(
                f"[bold]set {event.set_id}[/]: {escape(label)} -> {escape(where)}; "
                f"tiers in this order: {', '.join(event.order)}"
            )
        elif isinstance(event, ItemStarted):
            key = event.item.scope
            self._print(f"  {event.item.tier}/{event.item.dataset}: {event.action}", False)
            self.tasks[key] = self.progress.add_task(f"{event.item.dataset}", total=None)
        elif isinstance(event, ItemProgress):
            task = self.tasks.get(event.item.scope)
            if task is not None:
                self.progress.update(task, completed=event.bytes_done, total=event.bytes_total)
        elif isinstance(event, Note):
            self._print(f"    {event.message}", False)
        elif isinstance(event, Issue):
            color = "yellow" if event.severity is Severity.WARNING else "red"
            self._print(f"    [{color}]{event.severity.value}:[/] {escape(event.message)}")
        elif isinstance(event, ItemFinished):
            task = self.tasks.pop(event.item.scope, None)
            if task is not None:
                self.progress.remove_task(task)
            snap = f" snapshot {event.snapshot_id[:8]}" if event.snapshot_id else ""
            self._print(
                f"  {event.item.tier}/{event.item.dataset}: {_MARKS[event.status]}{snap} "
                f"({event.seconds:.1f}s): {escape(event.message)}"
            )
        elif isinstance(event, TierFinished) and not event.ok and event.message:
            self._print(f"  tier {event.tier}: {event.message}", False)
        elif isinstance(event, RunFinished):
            self.result = event.result


def summary(result: Result) -> str:
    counts: dict[ItemStatus, int] = {}
    for item in result.items:
        counts[item.status] = counts.get(item.status, 0) + 1
    parts = [f"{n} {status.value}" for status, n in counts.items()]
    verdict = {
        Status.COMPLETED: "[green]completed[/]",
        Status.PARTIALLY_FAILED: "[yellow]partially failed[/]",
        Status.FAILED: "[red]failed[/]",
    }[result.status]
    sets = f"; sets {', '.join(result.sets)}" if result.sets else ""
    return f"{result.operation} {verdict}: {', '.join(parts) or 'no items'}{sets}"


def exit_for(results: list[Result]) -> None:
    """Exit with the worst status's code (0 completed, 10 partially failed, 11 failed)."""
    code = max((r.status.exit_code for r in results), default=0)
    if code:
        raise typer.Exit(code)
