"""``haprotect repo copy``: copy snapshots into another repository (only missing chunks)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from haprotect.cli.app import reports_errors, stdout
from haprotect.cli.repo_common import (
    HostFilterOpt,
    JsonOpt,
    PasswordFileOpt,
    ProgressView,
    RetryLockOpt,
    TagFilterOpt,
    count,
    open_repo,
    repo_app,
    size,
    summary,
)
from haprotect.redact import display_url

if TYPE_CHECKING:
    from haprotect.model.snapshot import Snapshot
    from haprotect.repo import CopyReport, Repository


@repo_app.command("copy")
@reports_errors
def copy_command(
    source_url: Annotated[
        str,
        typer.Argument(
            help="The repository to copy from (a path, file:// or s3://).", metavar="SRC"
        ),
    ],
    target_url: Annotated[
        str,
        typer.Argument(help="The repository to copy into; it must exist.", metavar="DST"),
    ],
    snapshot_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Snapshots to copy (default: all, or those the options select).",
            metavar="SNAPSHOT",
        ),
    ] = None,
    set_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="SET_ID",
            help="Copy every snapshot of this snapshot set (id, prefix or 'latest'; repeatable).",
        ),
    ] = None,
    hosts: HostFilterOpt = None,
    tags: TagFilterOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", "-n", help="Show which snapshots would be copied; copy nothing."),
    ] = False,
    password_file: PasswordFileOpt = None,
    to_password_file: Annotated[
        Path | None,
        typer.Option(
            "--to-password-file",
            envvar="HAPROTECT_TO_PASSWORD_FILE",
            show_envvar=True,
            help="Read the passphrase of DST from the first line of this file (else as "
            "SRC's: $HAPROTECT_PASSWORD or a prompt).",
        ),
    ] = None,
    retry_lock: RetryLockOpt = 0.0,
    init: Annotated[
        bool,
        typer.Option("--init", help="Create DST if it does not exist yet (with its passphrase)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy snapshots from SRC into DST, storing only the chunks DST lacks.

    Everything copied is decrypted and encrypted again with DST's key, and each
    tree is written again with DST's chunk ids. A snapshot DST already holds a
    copy of (its metadata's copied_from) is skipped, so running the same copy
    again copies nothing. Each copy keeps the original's time, host, paths,
    tags and metadata, and is written as a backup is: packs, index, then the
    snapshot, so an interrupted copy leaves DST whole and the next one finishes.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused, 8 locked.
    """
    source = open_repo(source_url, password_file, retry_lock=retry_lock)
    if init:
        from haprotect.cli.runs import open_or_init_repository

        target = open_or_init_repository(target_url, to_password_file, init=True)
        target.lock_wait = retry_lock
    else:
        target = open_repo(target_url, to_password_file, retry_lock=retry_lock)
    chosen = _chosen(source, snapshot_ids or [], set_ids or [], hosts or [], tags or [])
    with ProgressView(as_json) as view:
        report = source.copy_to(target, chosen, dry_run=dry_run, on_progress=view)
    if as_json:
        summary(
            command="copy",
            source=display_url(source.url),
            target=display_url(target.url),
            **report.to_json(),
        )
        return
    _print(report, display_url(target.url))


def _chosen(
    source: Repository, ids: list[str], sets: list[str], hosts: list[str], tags: list[str]
) -> list[str] | None:
    """The ids of the snapshots to copy; None: every snapshot."""
    if not (ids or sets or hosts or tags):
        return None
    from haprotect.repo.maintenance.retention import select

    every = source.snapshots()
    picked: list[Snapshot] = every
    if ids or sets:
        wanted = {source.snapshot(i).id for i in ids} | _of_sets(every, sets)
        picked = [s for s in every if s.id in wanted]
    return [s.id for s in select(picked, hosts=hosts, tags=tags)]


def _of_sets(snapshots: list[Snapshot], refs: list[str]) -> set[str]:
    """The ids of the snapshots of the sets ``refs`` name."""
    if not refs:
        return set()
    from haprotect.engine.sets import find_set, read_sets

    sets = read_sets(snapshots)
    chosen = {find_set(sets, ref).id for ref in refs}
    found: set[str] = set()
    for snapshot in snapshots:
        block = snapshot.metadata.get("set")
        if isinstance(block, dict) and block.get("id") in chosen:
            found.add(snapshot.id)
    return found


def _print(report: CopyReport, target: str) -> None:
    for s in report.snapshots:
        if s.already:
            stdout.print(
                f"snapshot {s.source[:8]}: {target} holds it already ({(s.target or '')[:8]})",
                markup=False,
            )
        elif report.dry_run:
            stdout.print(f"snapshot {s.source[:8]}: would copy", markup=False)
        else:
            stdout.print(
                f"snapshot {s.source[:8]} copied as {(s.target or '')[:8]}: "
                f"{count(s.chunks_read, 'chunk')} read ({size(s.bytes_read)}), "
                f"{count(s.chunks_added, 'chunk')} added, {size(s.bytes_stored)} stored",
                markup=False,
            )
    verb = "would copy" if report.dry_run else "copied"
    already = len(report.snapshots) - len(report.copied)
    stdout.print(
        f"{verb} {count(len(report.copied), 'snapshot')} to {target}; {already} already there",
        markup=False,
    )
