"""``haprotect repo init|backup|snapshots|restore``: into the repository and back."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from haprotect.cli.app import reports_errors, stderr, stdout
from haprotect.cli.plainparams import PlainCommand
from haprotect.cli.repo_common import (
    HostFilterOpt,
    JsonOpt,
    PasswordFileOpt,
    ProgressView,
    RetryLockOpt,
    TagFilterOpt,
    UrlArg,
    count,
    local_time,
    open_repo,
    parse_meta,
    passphrase,
    repo_app,
    repository_store,
    size,
    snapshot_json,
    summary,
)
from haprotect.redact import display_url

if TYPE_CHECKING:
    from haprotect.model.snapshot import RestoreStats
    from haprotect.repo import Repository


@repo_app.command("init")
@reports_errors
def init_command(
    url: UrlArg, password_file: PasswordFileOpt = None, as_json: JsonOpt = False
) -> None:
    """Create an empty repository (asks for the passphrase twice in a terminal).

    Without the passphrase the repository cannot be read: keep it safe.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused.
    """
    from haprotect.repo import Repository

    store = repository_store(url)
    repo = Repository.init(store, passphrase(password_file, url, confirm=True))
    if as_json:
        summary(command="init", url=display_url(repo.url), id=repo.id)
    else:
        stdout.print(f"created repository {repo.id[:8]} at {display_url(repo.url)}", markup=False)


@repo_app.command("backup", cls=PlainCommand)
@reports_errors
def backup_command(
    url: UrlArg,
    paths: Annotated[list[Path], typer.Argument(help="Files and directories to back up.")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag the snapshot.")] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Record this host name (default: this host's).")
    ] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option(
            "--meta",
            metavar="KEY=VALUE",
            help="Record metadata (application, dataset, tier group snapshots for forget).",
        ),
    ] = None,
    readers: Annotated[
        int | None,
        typer.Option(
            "--readers",
            min=0,
            max=16,
            help="Processes that read small files beside this one, once there are many "
            "(default: one per core, up to 4; 0: none, for a host whose other cores are busy).",
        ),
    ] = None,
    password_file: PasswordFileOpt = None,
    retry_lock: RetryLockOpt = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Back up paths into a new snapshot.

    Only files changed since the latest snapshot of the same host and paths
    are read; only chunks the repository lacks are stored. Files that cannot
    be read are named, recorded in the snapshot, and the backup goes on (exit
    10); when none of the paths exists, no snapshot is written (exit 11).

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused, 8 locked, 10 partially failed, 11 failed.
    """
    from haprotect.model.result import Status

    metadata = parse_meta(meta or [])
    repo = open_repo(url, password_file, retry_lock=retry_lock, background=True)
    from haprotect.repo import BackupOptions  # the backup's modules load while the key is derived

    with ProgressView(as_json) as view:
        snapshot = repo.backup(
            paths,
            tags=tag or (),
            host=host,
            metadata=metadata,
            on_progress=view,
            options=BackupOptions(readers=readers),
        )
    s = snapshot.stats
    if as_json:
        summary(command="backup", snapshot=snapshot_json(snapshot))
    else:
        stdout.print(
            f"snapshot {snapshot.short_id} saved: "
            f"{s.files_new + s.files_changed + s.files_unchanged} files ({s.files_new} new, "
            f"{s.files_changed} changed, {s.files_unchanged} unchanged), {s.dirs} dirs, "
            f"{size(s.bytes_total)} in total, {size(s.bytes_read)} read, "
            f"{size(s.bytes_added)} added in {s.duration_s:.1f}s",
            markup=False,
        )
    for error in snapshot.errors:
        stderr.print(f"haprotect: warning: /{error.path}: {error.message}", markup=False)
    if snapshot.errors:
        raise typer.Exit(Status.PARTIALLY_FAILED.exit_code)


@repo_app.command("snapshots")
@reports_errors
def snapshots_command(
    url: UrlArg,
    host: HostFilterOpt = None,
    tag: TagFilterOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the snapshots, oldest first.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused.
    """
    from rich.table import Table

    repo = open_repo(url, password_file)
    found = [
        s
        for s in repo.snapshots()
        if (not host or s.host in host) and (not tag or set(tag) & set(s.tags))
    ]
    if as_json:
        summary(command="snapshots", snapshots=[snapshot_json(s) for s in found])
        return
    table = Table("ID", "Time", "Host", "Paths", "Tags", "Files", "Size", box=None)
    for s in found:
        files = s.stats.files_new + s.stats.files_changed + s.stats.files_unchanged
        table.add_row(
            s.short_id,
            local_time(s.time),
            s.host,
            "\n".join(s.paths),
            ",".join(s.tags),
            str(files),
            size(s.stats.bytes_total),
        )
    stdout.print(table)
    stdout.print(count(len(found), "snapshot"), markup=False)


@repo_app.command("restore")
@reports_errors
def restore_command(
    url: UrlArg,
    snapshot: Annotated[str, typer.Argument(help="Snapshot id (or a unique prefix), or 'latest'.")],
    target: Annotated[
        Path, typer.Option("--target", help="Restore into this directory (created if needed).")
    ],
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="Restore only this path and below (repeatable)."),
    ] = None,
    no_lock: Annotated[
        bool, typer.Option("--no-lock", help="Take no lock (for read-only access to the store).")
    ] = False,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            help="Processes sharing a restore from a local repository (default: one per "
            "core, up to 4; 1 leaves the other cores to what else runs on the host).",
        ),
    ] = None,
    password_file: PasswordFileOpt = None,
    retry_lock: RetryLockOpt = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Restore a snapshot into a directory, with owners, modes, times and holes.

    Paths keep their full original path below the target: /var/lib/pgsql
    restored into /tmp/r is at /tmp/r/var/lib/pgsql. Every byte is verified;
    a damaged chunk costs only the files that use it: each is listed with
    the bytes lost, and its readable bytes kept as NAME.haprotect-damaged.
    An --include the snapshot does not hold is refused before anything is
    written (exit 2). Files that could not be restored (lost data, a
    non-empty directory in the way) are named and the others restored
    (exit 10); when none of the files could be, exit 11.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused, 8 locked, 10 partially failed, 11 failed.
    """
    from haprotect.model.result import Status
    from haprotect.repo import RestoreOptions

    repo = open_repo(url, password_file, retry_lock=retry_lock)
    snapshot_id = _latest(repo) if snapshot == "latest" else snapshot
    with ProgressView(as_json) as view:
        options = RestoreOptions(processes=processes or 0)
        stats = repo.restore(snapshot_id, target, include or None, view, options, lock=not no_lock)
    if as_json:
        summary(command="restore", snapshot=snapshot_id, target=str(target), stats=asdict(stats))
    else:
        stdout.print(
            f"restored {stats.files} files, {stats.dirs} dirs, {size(stats.bytes_written)} "
            f"into {target}",
            markup=False,
        )
        for line in lost_lines(stats, target):
            stdout.print(line, markup=False)
    if stats.leftovers_removed:
        stderr.print(
            f"haprotect: removed {count(stats.leftovers_removed, 'partial file')} left in "
            f"{target} by an interrupted restore",
            markup=False,
        )
    lost = {f.path for f in stats.lost}
    for error in stats.errors:
        if error.path not in lost:
            stderr.print(f"haprotect: warning: {error.path}: {error.message}", markup=False)
    if stats.errors:
        failed = Status.FAILED if stats.nothing_restored else Status.PARTIALLY_FAILED
        raise typer.Exit(failed.exit_code)


def lost_lines(stats: RestoreStats, target: Path) -> list[str]:
    """``lost: /path bytes a-b (chunk … in pack …: reason); …``, one line per file."""
    from haprotect.repo.restore.damage import describe

    lines = []
    for item in stats.lost:
        ranges = ", ".join(describe(r) for r in item.ranges)
        kept = f"; the rest is in {target / item.kept_as}" if item.kept_as else "; not restored"
        lines.append(f"lost: /{item.path} {ranges}{kept}")
    if lines:
        lines.append(
            f"{count(len(stats.lost), 'file')} lost data; every other file is restored "
            "whole (run `haprotect repo check --read-data` to see the damage)"
        )
    return lines


def _latest(repo: Repository) -> str:
    from haprotect.repo.errors import RepositoryError

    found = repo.snapshots()
    if not found:
        raise RepositoryError(
            f"{display_url(repo.url)} has no snapshots", hint="back something up first"
        )
    return found[-1].id
