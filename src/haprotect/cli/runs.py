"""What the backup, snapshots and restore verbs share.

Their options, opening the repository (its URL, its passphrase from
``HAPROTECT_PASSWORD`` or ``--password-file``) and the run's verdict; the
rendering of a run's events is in :mod:`haprotect.cli.run_events`, loaded
only when a run starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from haprotect.cli.app import stderr
from haprotect.cli.repo_common import PASSWORD_ENV, passphrase, repository_store
from haprotect.redact import display_url

if TYPE_CHECKING:
    from haprotect.model.result import ItemStatus, Result

if TYPE_CHECKING:
    from haprotect.repo import Repository

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


def open_or_init_repository(
    url: str, password_file: Path | None, *, init: bool = False
) -> Repository:
    """Open the repository at ``url``; create it first when ``init`` and it does not exist."""
    from haprotect.repo import Repository
    from haprotect.repo.errors import RepositoryNotFound

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


def summary(result: Result) -> str:
    from haprotect.model.result import Status

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
