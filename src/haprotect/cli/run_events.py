"""A run's events on the terminal: rich progress on stderr, or JSON lines on stdout.

Imported when a backup or restore starts, not when the CLI does: it needs the
engine's event types.
"""

from __future__ import annotations

import json
import sys

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
from haprotect.model.result import ItemStatus, Result, Severity
from haprotect.redact import display_url


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
            console=stderr.console,
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
