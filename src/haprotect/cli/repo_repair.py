"""``haprotect repo repair index|snapshots``: rebuild the index, rewrite damaged snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from haprotect.cli.app import Group, reports_errors, stdout
from haprotect.cli.repo_common import (
    JsonOpt,
    PasswordFileOpt,
    ProgressView,
    RetryLockOpt,
    UrlArg,
    count,
    open_repo,
    repo_app,
    summary,
)

if TYPE_CHECKING:
    from haprotect.repo.maintenance.repairindex import IndexRepair
    from haprotect.repo.maintenance.repairsnapshots import SnapshotRepair

repair_app = typer.Typer(
    name="repair",
    cls=Group,
    help="Repair a damaged repository: rebuild the index from the packs, rewrite the snapshots "
    "that reference lost data. Run `haprotect repo check` first, and keep a copy of the "
    "repository if you can.",
    no_args_is_help=True,
)
repo_app.add_typer(repair_app, name="repair")

DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", "-n", help="Show what would be done; change nothing.")
]


@repair_app.command("index")
@reports_errors
def repair_index_command(
    url: UrlArg,
    dry_run: DryRunOpt = False,
    read_data: Annotated[
        bool,
        typer.Option(
            "--read-data",
            help="Read every pack whole, to find and salvage packs damaged inside "
            "(as `check --read-data` finds them).",
        ),
    ] = False,
    password_file: PasswordFileOpt = None,
    retry_lock: RetryLockOpt = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the index from the packs themselves (takes an exclusive lock).

    Reads every pack's own list of its blobs; drops index blobs that are damaged
    or name missing packs. A damaged pack (its trailer unreadable; with
    --read-data, any damage) is salvaged: the blobs that still verify move to
    new packs, and the pack is set aside as data/XX/ID.damaged, never deleted.
    Crash-safe: new packs, then the new index, are written before the old
    index is deleted.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused, 8 locked.
    """
    repo = open_repo(url, password_file, lenient_index=True, retry_lock=retry_lock)
    with ProgressView(as_json) as view:
        report = repo.repair_index(dry_run=dry_run, read_data=read_data, on_progress=view)
    if as_json:
        summary(command="repair index", **report.to_json())
        return
    _print_index(report)


def _print_index(r: IndexRepair) -> None:
    drop, index = ("would drop", "would index") if r.dry_run else ("dropped", "indexed")
    for name, problem in r.damaged.items():
        stdout.print(f"damaged index blob {name}: {problem}", markup=False)
    for name in r.misnamed:
        stdout.print(f"index blob {name} is not named by the hash of its bytes", markup=False)
    for pack_id in r.missing:
        stdout.print(f"pack {pack_id} is missing: {drop} from the index", markup=False)
    for pack_id in r.added:
        stdout.print(f"pack {pack_id}: {index} from its own trailer", markup=False)
    for pack_id, problem in r.unreadable.items():
        stdout.print(f"pack {pack_id} cannot be indexed: {problem}", markup=False)
    aside = "would set aside" if r.dry_run else "set aside"
    for pack_id, (saved, lost) in r.salvaged.items():
        stdout.print(
            f"pack {pack_id} is damaged: {count(saved, 'blob')} salvaged into new packs, "
            f"{count(lost, 'blob')} lost; {aside} as data/{pack_id[:2]}/{pack_id}.damaged",
            markup=False,
        )
    if not r.changed:
        stdout.print(
            f"the index is whole: {count(r.packs_indexed, 'pack')} indexed, nothing to do",
            markup=False,
        )
        return
    wrote, removed = ("would write", "would remove") if r.dry_run else ("wrote", "removed")
    stdout.print(
        f"{wrote} {count(r.blobs_written, 'index blob')} listing "
        f"{count(r.packs_indexed, 'pack')} of {r.packs}, then {removed} "
        f"{count(r.blobs_removed, 'old index blob')}",
        markup=False,
    )


@repair_app.command("snapshots")
@reports_errors
def repair_snapshots_command(
    url: UrlArg,
    snapshot_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Snapshots to repair (default: all).", metavar="SNAPSHOT"),
    ] = None,
    dry_run: DryRunOpt = False,
    forget: Annotated[
        bool,
        typer.Option(
            "--forget",
            help="Remove each original after writing its repaired snapshot, and snapshots "
            "that cannot be read at all.",
        ),
    ] = False,
    password_file: PasswordFileOpt = None,
    retry_lock: RetryLockOpt = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Rewrite the snapshots that reference lost data into new ones that restore whole.

    Files with lost content are truncated before their first lost chunk; records
    of lost tree chunks, and paths a restore refuses, are left out. The new
    snapshot keeps the original's id in its metadata (repaired_from) and the tag
    'repaired'. Needs an intact index (`repair index` first).

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 6 storage failed,
    7 repository refused, 8 locked.
    """
    repo = open_repo(url, password_file, lenient_index=True, retry_lock=retry_lock)
    done = repo.repair_snapshots(snapshot_ids or (), dry_run=dry_run, forget=forget)
    if as_json:
        summary(
            command="repair snapshots",
            dry_run=dry_run,
            forget=forget,
            snapshots=[r.to_json() for r in done],
        )
        return
    for r in done:
        _print_snapshot(r, dry_run)
    verb = "would repair" if dry_run else "repaired"
    stdout.print(
        f"{verb} {count(sum(1 for r in done if r.unreadable is None), 'snapshot')}", markup=False
    )


def _print_snapshot(r: SnapshotRepair, dry_run: bool) -> None:
    would = "would " if dry_run else ""
    kept = "would keep" if dry_run else "kept"
    short = r.original[:8]
    if r.unreadable is not None:
        action = f"{would}remove it" if r.forgotten else "run with --forget to remove it"
        stdout.print(f"snapshot {short} cannot be read ({r.unreadable}): {action}", markup=False)
        return
    for f in r.files:
        stdout.print(
            f"  {short}:/{f.path}: content lost, {kept} the first {f.kept} of {f.size} bytes",
            markup=False,
        )
    if r.lost_tree_chunks or r.dropped:
        stdout.print(
            f"  {short}: {count(r.lost_tree_chunks, 'tree chunk')} lost, "
            f"{would}leave out {count(r.dropped, 'more record')}",
            markup=False,
        )
    if r.nothing_left:
        outcome = "nothing of it can be read: no new snapshot"
    elif r.new is not None:
        outcome = f"new snapshot {r.new[:8]}"
    else:
        outcome = "would write a new snapshot"
    forgotten = ("; would remove the original" if dry_run else "; removed the original") * (
        r.forgotten
    )
    stdout.print(f"snapshot {short}: {outcome}{forgotten}", markup=False)
