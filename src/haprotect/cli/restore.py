"""``haprotect restore``: a snapshot set, bottom-up, whole or tier by tier."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from haprotect.cli.app import app, reports_errors, stderr, stdout
from haprotect.cli.repo_common import count
from haprotect.cli.runs import (
    InventoryOpt,
    JsonOpt,
    PasswordFileOpt,
    RepoOpt,
    exit_for,
    open_or_init_repository,
    summary,
)
from haprotect.errors import UsageError
from haprotect.pgtools import stop_command

if TYPE_CHECKING:
    from haprotect.model.plan import RestorePlan, SnapshotSet

ORIGINAL = "original"


@app.command("restore")
@reports_errors
def restore_command(
    set_ref: Annotated[
        str,
        typer.Argument(
            metavar="SET",
            help="A set id (or its start), or 'latest': the newest complete set "
            "(a partial set is restored only by its id).",
        ),
    ],
    repo_url: RepoOpt = None,
    tiers: Annotated[
        list[str] | None,
        typer.Option("--tier", help="Only this tier (repeatable); default: every tier."),
    ] = None,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Restore under DIR (DIR/<tier>/<dataset>), not in place."),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Ask nothing; overwrite what is at the targets."),
    ] = False,
    application: Annotated[
        str | None,
        typer.Option("--app", help="With 'latest': the latest complete set of this application."),
    ] = None,
    inventory_file: InventoryOpt = None,
    keep_running: Annotated[
        bool | None,
        typer.Option(
            "--keep-running/--stop",
            help="Leave a restored database running after its check "
            "(default: yes with --to, no in place).",
            show_default=False,
        ),
    ] = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore a snapshot set: storage, then database, then application, then front end.

    Each tier is checked healthy before the next starts (a database must
    start and answer; a tree must be complete). Without --yes, asks which
    tiers and where, shows what would be overwritten, and asks twice before
    replacing live data in its original place. Items that cannot be restored
    (a PostgreSQL server running at the target, say) are listed before any
    question, and before anything is replaced. With --yes, a restore in which
    such an item sits on tiers that would be restored beneath it is refused
    before anything is written (exit 7); --tier leaves it out.

    Exit status: 0 completed, 1 not confirmed, 2 bad usage, 3 unreadable input,
    6 storage failed, 7 repository refused, 10 partially failed, 11 failed.
    """
    from rich.markup import escape

    from haprotect.cli.run_events import JsonLines, RichProgress
    from haprotect.engine import find_set, list_sets, run_restore
    from haprotect.engine.sets import LATEST
    from haprotect.plan import load_inventory, plan_restore

    if repo_url is None:
        raise UsageError("which repository?", hint="give --repo URL (or set HAPROTECT_REPOSITORY)")
    # A bad inventory is said before the passphrase is asked for or the key derived.
    inventory = load_inventory(inventory_file)
    repo = open_or_init_repository(repo_url, password_file)
    found = list_sets(repo)
    chosen = find_set(found, set_ref, application)
    if set_ref == LATEST:
        _skipped(found, chosen)
    wanted = list(tiers or ())
    if not yes:
        _describe(chosen)
        wanted, to = _ask_what(chosen, wanted, to)
    plan = plan_restore(chosen, inventory, tiers=wanted, to=to, keep_running=keep_running)
    _show(plan)
    if yes:
        _refuse_replacing_under(plan)
    problems = [p for i in plan.items for p in i.problems]
    if not yes and not _confirm(plan, problems):
        stderr.print("haprotect: nothing restored", markup=False)
        raise typer.Exit(1)
    # --yes, or every question answered yes: what the targets hold may be replaced.
    plan = replace(plan, overwrite=True)
    if as_json:
        result = run_restore(plan, repo, JsonLines())
    else:
        with RichProgress() as reporter:
            result = run_restore(plan, repo, reporter)
        stderr.print(summary(result))
        for item in result.items:
            dsn = item.details.get("dsn")
            if dsn:
                stdout.print(
                    f"{item.dataset}: the restored PostgreSQL runs ({escape(str(dsn))}); "
                    f"stop it with: {escape(stop_command(Path(str(item.details.get('pgdata')))))}"
                )
    exit_for([result])


def _refuse_replacing_under(plan: RestorePlan) -> None:
    """Refuse a restore that would replace tiers under an item that cannot be restored."""
    from haprotect.plan.restore import replaced_under
    from haprotect.repo.errors import RestoreError

    found = replaced_under(plan)
    if not found:
        return
    item, below = found[0]
    raise RestoreError(
        f"not restoring set {plan.set.id}: {item.item.tier}/{item.item.dataset} cannot be "
        f"restored ({'; '.join(item.problems)}), and {count(len(below), 'tier')} below it "
        f"({', '.join(below)}) would be replaced under it",
        hint="remove what stops it first, or restore other tiers only with --tier",
    )


def _skipped(found: list[SnapshotSet], chosen: SnapshotSet) -> None:
    """Say which newer partial sets 'latest' passed over."""
    for s in found:
        if s.application == chosen.application and s.started > chosen.started:
            stderr.print(
                f"skipped set {s.id} ({s.started:%Y-%m-%d %H:%M:%S} UTC): partial, "
                f"{'; '.join(s.partial_because)}",
                markup=False,
            )
    stderr.print(f"latest complete set: {chosen.id}", markup=False)


def _describe(s: SnapshotSet) -> None:
    from rich.markup import escape

    stderr.print(
        f"set [bold]{s.id}[/] of {escape(s.name)}, taken {s.started:%Y-%m-%d %H:%M:%S} UTC"
        + ("" if s.complete else " [yellow](partial)[/]")
    )
    for reason in s.partial_because:
        stderr.print(f"  [yellow]partial:[/] {escape(reason)}")
    for name in s.restore_order:
        datasets = ", ".join(i.dataset for i in s.items_of(name)) or "no data"
        stderr.print(f"  tier {escape(name)}: {escape(datasets)}")


def _ask_what(s: SnapshotSet, wanted: list[str], to: Path | None) -> tuple[list[str], Path | None]:
    if not wanted:
        answer = typer.prompt(
            "Tiers to restore (comma-separated, in any order)", default="all", err=True
        )
        if answer.strip() != "all":
            wanted = [t.strip() for t in answer.split(",") if t.strip()]
    if to is None:
        answer = typer.prompt(
            f"Where to: '{ORIGINAL}' (the original place) or a directory",
            default=ORIGINAL,
            err=True,
        )
        if answer.strip() != ORIGINAL:
            to = Path(answer.strip())
    return wanted, to


def _show(plan: RestorePlan) -> None:
    from rich.markup import escape

    for tier in plan.tiers:
        stderr.print(f"tier [bold]{escape(tier.name)}[/]:")
        if not tier.items:
            stderr.print("  no data to restore")
        for item in tier.items:
            where = "original place" if item.in_place else "restored copy"
            node = f" on {item.node}" if item.node else ""
            stderr.print(f"  {escape(item.item.dataset)} -> {escape(item.target)} ({where}{node})")
            for entry in item.existing:
                stderr.print(f"    [yellow]will be replaced:[/] {escape(entry)}")
            for problem in item.problems:
                stderr.print(f"    [red]cannot restore:[/] {escape(problem)}")


def _confirm(plan: RestorePlan, problems: list[str]) -> bool:
    if problems and not typer.confirm(
        "Some items cannot be restored (see above). Restore the others?", err=True
    ):
        return False
    overwrites = any(i.overwrites for i in plan.items)
    if not overwrites:
        return bool(typer.confirm("Restore?", default=True, err=True))
    if not typer.confirm("Replace what is listed above?", err=True):
        return False
    return not plan.live or bool(
        typer.confirm("This overwrites LIVE data in its original place. Are you sure?", err=True)
    )
