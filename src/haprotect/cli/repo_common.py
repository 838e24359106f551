"""What the ``haprotect repo`` commands share: options, passphrase, progress bars, JSON lines."""

from __future__ import annotations

import getpass
import json
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from haprotect.cli.app import Group, stderr
from haprotect.errors import InputError, UsageError
from haprotect.redact import display_url

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from haprotect.model.progress import ProgressEvent
    from haprotect.model.snapshot import Snapshot
    from haprotect.repo import Repository
    from haprotect.storage import BlobStore

repo_app = typer.Typer(
    name="repo",
    cls=Group,
    help="The repository: deduplicated, compressed, encrypted snapshots in a directory or S3. "
    "The passphrase comes from --password-file, else $HAPROTECT_PASSWORD, else a prompt.",
    no_args_is_help=True,
)

UrlArg = Annotated[
    str,
    typer.Argument(
        help="Repository location: a path, file:///path or s3://bucket/prefix.", metavar="URL"
    ),
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        envvar="HAPROTECT_PASSWORD_FILE",
        help="Read the passphrase from the first line of this file.",
        show_envvar=True,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print JSON lines: progress events, then a final line with type 'summary'.",
    ),
]
RetryLockOpt = Annotated[
    float,
    typer.Option(
        "--retry-lock",
        metavar="SECONDS",
        help="Keep trying this long while another process holds a conflicting lock.",
    ),
]
HostFilterOpt = Annotated[
    list[str] | None, typer.Option("--host", help="Only snapshots of this host (repeatable).")
]
TagFilterOpt = Annotated[
    list[str] | None, typer.Option("--tag", help="Only snapshots with this tag (repeatable).")
]
RepackOpt = Annotated[
    float,
    typer.Option(
        "--repack-threshold",
        min=0.0,
        max=1.0,
        help="Repack a pack when at least this fraction of it is unused (0: any unused "
        "byte; 1: only wholly unused packs are deleted, none repacked).",
    ),
]


PASSWORD_ENV = "HAPROTECT_PASSWORD"
_NO_PASSPHRASE_HINT = (
    f"set {PASSWORD_ENV}, pass --password-file FILE, or run in a terminal to be asked"
)


def passphrase(password_file: Path | None, url: str, *, confirm: bool = False) -> str:
    """From ``--password-file``, else ``$HAPROTECT_PASSWORD``, else asked (never echoed)."""
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"{password_file}: cannot read the passphrase file ({exc.strerror or exc})"
            ) from None
        value = text.splitlines()[0] if text else ""
        if not value:
            raise InputError(f"{password_file}: the passphrase file is empty")
        return value
    value = os.environ.get(PASSWORD_ENV, "")
    if value:
        return value
    if not sys.stdin.isatty():
        raise UsageError(f"no passphrase for {display_url(url)}", hint=_NO_PASSPHRASE_HINT)
    value = getpass.getpass(f"passphrase for {display_url(url)}: ")
    if not value:
        raise UsageError("an empty passphrase is not allowed")
    if confirm and getpass.getpass("the same passphrase again: ") != value:
        raise UsageError("the two passphrases differ", hint="run the command again")
    return value


def repository_store(url: str) -> BlobStore:
    """The store of a repository URL given as an argument, ``--repo`` or
    ``$HAPROTECT_REPOSITORY``, checked as a policy's ``where`` is: a known
    scheme, and a local repository that is (or will be) a directory, never a
    device, FIFO, socket or file (:mod:`haprotect.storage.repository_url`).
    """
    from haprotect.storage import open_store
    from haprotect.storage.repository_url import check_repository

    try:
        check_repository(url)
    except ValueError as exc:
        raise UsageError(
            str(exc), hint="give a directory: a path, file:///path or s3://bucket/prefix"
        ) from None
    return open_store(url)


def open_repo(
    url: str,
    password_file: Path | None,
    *,
    lenient_index: bool = False,
    retry_lock: float = 0,
    background: bool = False,
) -> Repository:
    """The repository at ``url``; ``background`` unlocks it while the command starts."""
    from haprotect.repo import open_repository

    store = repository_store(url)
    secret = passphrase(password_file, url)
    repo = open_repository(store, secret, lenient_index=lenient_index, background=background)
    repo.lock_wait = retry_lock
    return repo


def emit(record: Mapping[str, Any]) -> None:
    """One JSON line on stdout."""
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def summary(**fields: Any) -> None:
    emit({"type": "summary", **fields})


class ProgressView:
    """Renders progress events: a rich bar on a terminal, JSON lines with ``--json``."""

    def __init__(self, as_json: bool) -> None:
        self._json = as_json
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressView:
        if not self._json and stderr.is_terminal:
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=stderr.console,
                transient=True,
            )
            self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if self._json:
                emit({"type": "progress", **asdict(event)})
            elif self._bar is not None:
                self._draw(self._bar, event)

    def _draw(self, bar: Progress, event: ProgressEvent) -> None:
        from haprotect.model.progress import Phase

        if event.phase in (Phase.BACKUP, Phase.RESTORE, Phase.COPY):
            description = event.phase.value
            files = f"{event.files_done}/{event.files_total or '?'} files"
            detail = f"{size(event.bytes_done)}/{size(event.bytes_total or 0)}, {files}"
            total, done = event.bytes_total, event.bytes_done
        else:
            description = f"{event.phase.value}: {event.current or 'done'}"
            detail = f"{event.files_done}/{event.files_total or '?'}"
            total, done = event.files_total, event.files_done
        if self._task is None:
            self._task = bar.add_task(description, total=total, detail=detail)
        bar.update(self._task, description=description, total=total, completed=done, detail=detail)


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def local_time(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "short_id": snapshot.short_id,
        "time": snapshot.time.isoformat(),
        "host": snapshot.host,
        "username": snapshot.username,
        "paths": list(snapshot.paths),
        "tags": list(snapshot.tags),
        "metadata": dict(snapshot.metadata),
        "parent": snapshot.parent,
        "stats": asdict(snapshot.stats),
        "errors": [asdict(e) for e in snapshot.errors],
    }


def parse_meta(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (``--meta application=shop``)."""
    found: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(
                f"--meta {item!r} is not KEY=VALUE", hint="e.g. --meta application=shop"
            )
        found[name.strip()] = value
    return found


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
