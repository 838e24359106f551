"""``haprotect repo forget|prune|check|stats|unlock``: thin out, verify, inspect, unlock."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from haprotect.cli.app import reports_errors, stdout
from haprotect.cli.repo_common import (
    HostFilterOpt,
    JsonOpt,
    PasswordFileOpt,
    ProgressView,
    RepackOpt,
    RetryLockOpt,
    TagFilterOpt,
    UrlArg,
    count,
    local_time,
    open_repo,
    repo_app,
    size,
    summary,
)
from haprotect.errors import ExitCode, UsageError
from haprotect.repo.maintenance.pruneoptions import DEFAULT_REPACK_THRESHOLD, PruneOptions
from haprotect.repo.maintenance.retention import (
    DEFAULT_GROUP_BY,
    GROUP_FIELDS,
    Duration,
    Group,
    KeepPolicy,
    parse_group_by,
)

if TYPE_CHECKING:
    from haprotect.repo.maintenance.check import CheckReport
    from haprotect.repo.maintenance.prune import PruneReport


@repo_app.command("forget")
@reports_errors
def forget_command(
    url: UrlArg,
    snapshot_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Snapshots to forget by id (instead of a keep policy).", metavar="SNAPSHOT"
        ),
    ] = None,
    keep_last: Annotated[int, typer.Option(help="Keep the N newest snapshots.", metavar="N")] = 0,
    keep_hourly: Annotated[
        int, typer.Option(help="Keep the newest of each of the last N hours.", metavar="N")
    ] = 0,
    keep_daily: Annotated[
        int, typer.Option(help="Keep the newest of each of the last N days.", metavar="N")
    ] = 0,
    keep_weekly: Annotated[
        int, typer.Option(help="Keep the newest of each of the last N ISO weeks.", metavar="N")
    ] = 0,
    keep_monthly: Annotated[
        int, typer.Option(help="Keep the newest of each of the last N months.", metavar="N")
    ] = 0,
    keep_yearly: Annotated[
        int, typer.Option(help="Keep the newest of each of the last N years.", metavar="N")
    ] = 0,
    keep_within: Annotated[
        str | None,
        typer.Option(
            help="Keep every snapshot less than D older than the group's newest "
            "(y, m = months, w, d, h: 2d3h).",
            metavar="D",
        ),
    ] = None,
    keep_tag: Annotated[
        list[str] | None, typer.Option("--keep-tag", help="Keep snapshots with this tag.")
    ] = None,
    group_by: Annotated[
        str,
        typer.Option(
            help=f"Apply the policy to each group of snapshots alike in these fields, "
            f"comma-separated, from {', '.join(GROUP_FIELDS)}; 'none' for one group.",
        ),
    ] = ",".join(DEFAULT_GROUP_BY),
    host: HostFilterOpt = None,
    tag: TagFilterOpt = None,
    application: Annotated[
        list[str] | None,
        typer.Option("--app", help="Only the sets of this application (repeatable)."),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", help="Only the sets that hold this data set (repeatable)."),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Prune afterwards to free the space.")
    ] = False,
    repack_threshold: RepackOpt = DEFAULT_REPACK_THRESHOLD,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show what would be removed; change nothing.")
    ] = False,
    password_file: PasswordFileOpt = None,
    retry_lock: RetryLockOpt = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Remove snapshots by a keep policy, each decision with the rule behind it.

    Counts of -1 keep every period. Calendar periods are local time. A
    snapshot any rule keeps is kept. Snapshot sets are judged whole, per
    application (or data set backed up alone): the rules count complete
    sets, and the newest complete set is never removed. Only snapshot
    records are removed; the data stays until a prune (--prune, or
    `haprotect repo prune`).

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused, 8 locked.
    """
    # imported here: the other repo commands do without the engine
    from haprotect.cli.forget_sets import print_set_group, set_group_json
    from haprotect.engine.set_retention import Judgement, judge

    policy = KeepPolicy(
        last=keep_last,
        hourly=keep_hourly,
        daily=keep_daily,
        weekly=keep_weekly,
        monthly=keep_monthly,
        yearly=keep_yearly,
        within=Duration.parse(keep_within) if keep_within is not None else None,
        tags=tuple(keep_tag or ()),
    )
    fields = parse_group_by(group_by)
    if snapshot_ids and not policy.empty:
        raise UsageError("give snapshot ids or --keep-* options, not both")
    repo = open_repo(url, password_file, retry_lock=retry_lock)
    judged = Judgement()
    if snapshot_ids:
        if application or dataset:
            raise UsageError("--app and --dataset choose what a keep policy judges, not ids")
        removed = [repo.snapshot(i).id for i in snapshot_ids]
        if not dry_run:
            repo.forget(*removed)
    else:
        judged = judge(
            repo.snapshots(),
            policy,
            fields,
            applications=application or (),
            datasets=dataset or (),
            hosts=host or (),
            tags=tag or (),
        )
        removed = judged.removed
        if not dry_run:
            repo.forget(*removed)
    report: PruneReport | None = None
    if prune:
        with ProgressView(as_json) as view:
            options = PruneOptions(repack_threshold=repack_threshold, dry_run=dry_run)
            report = repo.prune(options, view, forgetting=removed if dry_run else ())
    if as_json:
        summary(
            command="forget",
            dry_run=dry_run,
            policy=policy.describe(),
            sets=[set_group_json(g) for g in judged.sets],
            groups=[_group_json(g) for g in judged.others],
            removed=removed,
            prune=_prune_json(report) if report else None,
        )
        return
    for set_group in judged.sets:
        print_set_group(set_group)
    for group in judged.others:
        _print_group(group)
    verb = "would remove" if dry_run else "removed"
    if snapshot_ids:
        for snapshot_id in removed:
            stdout.print(f"{verb} {snapshot_id[:8]}", markup=False)
    stdout.print(f"{verb} {count(len(removed), 'snapshot')}", markup=False)
    if report is not None:
        _print_prune(report)


def _group_json(group: Group) -> dict[str, Any]:
    return {
        "group": group.key,
        "snapshots": [
            {
                "id": d.snapshot.id,
                "time": d.snapshot.time.isoformat(),
                "keep": d.keep,
                "reasons": list(d.reasons),
            }
            for d in group.decisions
        ],
    }


def _print_group(group: Group) -> None:
    from rich.table import Table

    key = ", ".join(f"{k} {_value(v)}" for k, v in group.key.items()) or "all snapshots"
    stdout.print(f"group: {key}", markup=False)
    table = Table("ID", "Time", "Decision", "Why", box=None, padding=(0, 1))
    for d in group.decisions:
        table.add_row(
            d.snapshot.short_id,
            local_time(d.snapshot.time),
            "keep" if d.keep else "remove",
            "; ".join(d.reasons),
        )
    stdout.print(table)


def _value(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)


@repo_app.command("prune")
@reports_errors
def prune_command(
    url: UrlArg,
    repack_threshold: RepackOpt = DEFAULT_REPACK_THRESHOLD,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show what would be done; change nothing.")
    ] = False,
    password_file: PasswordFileOpt = None,
    retry_lock: RetryLockOpt = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Free the space of data no snapshot uses (takes an exclusive lock).

    Deletes unused packs and repacks mostly unused ones. Crash-safe: new packs
    and the new index are written before anything old is deleted. Refuses to
    delete anything when a snapshot or the index is damaged.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused, 8 locked.
    """
    repo = open_repo(url, password_file, retry_lock=retry_lock)
    with ProgressView(as_json) as view:
        report = repo.prune(PruneOptions(repack_threshold, dry_run), view)
    if as_json:
        summary(command="prune", **_prune_json(report))
    else:
        _print_prune(report)


def _prune_json(report: PruneReport) -> dict[str, Any]:
    body = asdict(report)
    body["bytes_after"] = report.bytes_after
    body["bytes_freed"] = report.bytes_freed
    return body


def _print_prune(r: PruneReport) -> None:
    would = "would " if r.dry_run else ""
    stdout.print(
        f"{count(r.snapshots, 'snapshot')} use {count(r.chunks_used, 'chunk')}; {would}delete "
        f"{r.packs_deleted} unused and {r.orphan_packs} unindexed packs, {would}repack "
        f"{r.packs_repacked}; {would}free {size(r.bytes_freed)} "
        f"({size(r.bytes_before)} → {size(r.bytes_after)})"
        + (
            f"; removed {count(r.leftovers_removed, 'half-written file')}"
            if r.leftovers_removed
            else ""
        ),
        markup=False,
    )


@repo_app.command("check")
@reports_errors
def check_command(
    url: UrlArg,
    read_data: Annotated[
        bool,
        typer.Option(
            "--read-data", help="Also read every pack and verify each chunk against its id."
        ),
    ] = False,
    subset: Annotated[
        str | None,
        typer.Option(
            help="Read only N% of the packs (at random) or part N/M of them (by pack id); "
            "implies --read-data.",
            metavar="N%|N/M",
        ),
    ] = None,
    no_lock: Annotated[
        bool,
        typer.Option(
            "--no-lock", help="Take no lock (read-only access; a running prune may cause alarms)."
        ),
    ] = False,
    password_file: PasswordFileOpt = None,
    retry_lock: RetryLockOpt = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Verify the repository; every problem names the snapshots and files it affects.

    Checks key files, index blobs, that every indexed pack exists with the
    right size and trailer, that every chunk every snapshot uses is indexed,
    and every snapshot path as a restore would judge it. Unindexed packs and
    stale locks are reported as info, stray files as warnings.

    Exit status: 0 no errors, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused, 8 locked.
    """
    from haprotect.repo.maintenance.check import Subset

    chosen = Subset.parse(subset) if subset is not None else None
    repo = open_repo(url, password_file, lenient_index=True, retry_lock=retry_lock)
    with ProgressView(as_json) as view:
        report = repo.check(read_data=read_data, subset=chosen, on_progress=view, lock=not no_lock)
    if as_json:
        summary(command="check", **report.to_json())
    else:
        _print_check(report)
    if not report.ok:
        raise typer.Exit(ExitCode.REPOSITORY)


def _print_check(report: CheckReport) -> None:
    for f in report.findings:
        stdout.print(f"{f.severity.value}: {f.message}", markup=False)
        if f.snapshots:
            shown = ", ".join(s[:8] for s in f.snapshots)
            stdout.print(f"  snapshots: {shown}", markup=False)
        for path in f.files:
            stdout.print(f"  file {path}", markup=False)
        if f.more_files:
            stdout.print(f"  and {f.more_files} more files", markup=False)
    read = (
        f", read {report.packs_read} packs ({size(report.bytes_read)})" if report.packs_read else ""
    )
    outcome = "no errors" if report.ok else count(len(report.errors), "error")
    stdout.print(
        f"checked {count(report.snapshots, 'snapshot')}, "
        f"{count(report.index_blobs, 'index blob')}, {count(report.packs, 'pack')}"
        f"{read}: {outcome}",
        markup=False,
    )


@repo_app.command("stats")
@reports_errors
def stats_command(
    url: UrlArg, password_file: PasswordFileOpt = None, as_json: JsonOpt = False
) -> None:
    """Show what the repository holds and what deduplication and compression save.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused.
    """
    from rich.table import Table

    stats = open_repo(url, password_file).stats()
    if as_json:
        summary(command="stats", **stats.to_json())
        return
    rows = [
        ("snapshots", f"{stats.snapshots} from {stats.hosts} hosts"),
        ("restore size", size(stats.restore_bytes)),
        ("unique chunks", f"{stats.chunks}, {size(stats.raw_bytes)} uncompressed"),
        ("stored", f"{size(stats.stored_bytes)} (compression {stats.compression_ratio:.2f}x)"),
        ("deduplication", f"{stats.dedup_ratio:.2f}x"),
        (
            "packs",
            f"{stats.packs} ({stats.data_packs} data, {stats.tree_packs} tree), "
            f"{size(stats.pack_bytes)}",
        ),
        ("unindexed packs", f"{stats.orphan_packs}, {size(stats.orphan_bytes)}"),
        ("index blobs", f"{stats.index_blobs}, {size(stats.index_bytes)}"),
        ("locks", str(stats.locks)),
    ]
    table = Table(box=None, show_header=False)
    for name, value in rows:
        table.add_row(name, value)
    stdout.print(table)


@repo_app.command("unlock")
@reports_errors
def unlock_command(
    url: UrlArg,
    remove_all: Annotated[
        bool,
        typer.Option(
            "--remove-all",
            help="Remove every lock, live ones too: only when no haprotect uses the repository.",
        ),
    ] = False,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove stale locks (of processes that are gone or stopped refreshing them).

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused.
    """
    repo = open_repo(url, password_file, lenient_index=True)
    removed = repo.unlock(remove_all=remove_all)
    left = repo.locks()
    if as_json:
        summary(
            command="unlock",
            removed=[s.describe() for s in removed],
            remaining=[s.describe() for s in left],
        )
        return
    for status in removed:
        stdout.print(f"removed {status.describe()}", markup=False)
    for status in left:
        stdout.print(f"still held: {status.describe()}", markup=False)
    if not removed:
        stdout.print("no stale lock to remove", markup=False)
