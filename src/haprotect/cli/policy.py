"""``haprotect policy``: store policy versions in the catalog and review them.

A version is pending until approved (or rejected); the service runs only
the approved version of each policy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from haprotect.cli.app import Group, app, reports_errors, stdout
from haprotect.cli.catalog_common import (
    CatalogOpt,
    JsonOpt,
    dumps,
    opened,
    to_json,
    user,
    when,
)

if TYPE_CHECKING:
    from haprotect.catalog.records import PolicyVersion

policy_app = typer.Typer(
    name="policy",
    cls=Group,
    help="Policies in the catalog: apply a version, review it (diff, approve, reject). "
    "Only an approved version runs.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")

NameArg = Annotated[str, typer.Argument(help="The policy's name (its metadata.name).")]
VersionOpt = Annotated[
    int | None,
    typer.Option("--version", "-v", min=1, help="The version's number (default: see above)."),
]
CommentOpt = Annotated[
    str | None, typer.Option("--comment", "-m", help="Why: recorded with the decision.")
]


@policy_app.command("apply")
@reports_errors
def apply_command(
    file: Annotated[Path, typer.Argument(help="The policy file to store.")],
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a policy file and store it as the policy's next version.

    The version is pending until `haprotect policy approve` approves it,
    unless the rules that generated the policy say `auto_approve: true`
    (its metadata.rules.auto_approve). A file equal to the newest version
    stores nothing and says so.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed, 5 plug-in missing.
    """
    from haprotect.errors import InputError, located
    from haprotect.policy.io import load_policy

    policy = load_policy(file)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(located(str(file), None, f"cannot read: {exc.strerror}")) from None
    auto = policy.metadata.rules.auto_approve
    with opened(catalog) as store:
        applied = store.apply_policy(policy.metadata.name, text, by=user(), auto_approve=auto)
    version = applied.version
    if as_json:
        stdout.out(dumps({**_summary(version), "created": applied.created}))
        return
    name = version.policy
    if not applied.created:
        same = f"the same as version {version.number} ({version.state})"
        stdout.out(f"policy {name}: unchanged, {same}")
    elif version.state == "approved":
        stdout.out(f"policy {name}: version {version.number} stored, approved (auto_approve)")
    else:
        stdout.out(f"policy {name}: version {version.number} stored, {version.state}")
        stdout.out(
            f"review it: haprotect policy diff {name}; then: haprotect policy approve {name}"
        )


@policy_app.command("versions")
@reports_errors
def versions_command(
    name: Annotated[str | None, typer.Argument(help="Only this policy's versions.")] = None,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the versions of every policy (or of one), oldest first.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed, 5 plug-in missing.
    """
    from rich.markup import escape
    from rich.table import Table

    with opened(catalog) as store:
        found = store.versions(name)
    if as_json:
        stdout.out(dumps([_summary(v) for v in found]))
        return
    if not found:
        stdout.out("no policies in the catalog (haprotect policy apply FILE stores one)")
        return
    table = Table(title="Policy versions", title_justify="left")
    for column in ("policy", "version", "state", "created (UTC)", "by", "decided (UTC)", "by",
                   "comment"):  # fmt: skip
        table.add_column(column)
    for v in found:
        table.add_row(
            escape(v.policy), str(v.number), v.state.value, when(v.created_at),
            escape(v.created_by), when(v.decided_at), escape(v.decided_by or ""),
            escape(v.comment or ""),
        )  # fmt: skip
    stdout.print(table)


@policy_app.command("show")
@reports_errors
def show_command(
    name: NameArg,
    version: VersionOpt = None,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a version of a policy as it was applied (default: the newest version).

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed, 5 plug-in missing.
    """
    with opened(catalog) as store:
        found = store.version(name, version)
    if as_json:
        stdout.out(dumps(to_json(found)))
        return
    sys.stdout.write(found.text)


@policy_app.command("diff")
@reports_errors
def diff_command(
    name: NameArg,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what the newest pending version changes from the approved one.

    Items are matched by cluster and data set, groups by cluster and name
    (as `haprotect diff`). With no approved version yet, every item is new.
    As diff(1), it exits 1 when the versions differ.

    Exit status: 0 no differences, 1 differences, 2 bad usage, 3 unreadable input,
    4 component failed, 5 plug-in missing.
    """
    from haprotect.catalog.errors import CatalogConflict
    from haprotect.model.policy import Policy
    from haprotect.policy.diff import change_to_json, describe, diff_policies
    from haprotect.policy.io import parse_policy

    with opened(catalog) as store:
        pending = store.pending(name)
        approved = store.approved(name)
    if pending is None:
        raise CatalogConflict(
            f"policy {name!r} has no pending version", hint=f"haprotect policy versions {name}"
        )
    new = parse_policy(pending.text, f"{name} version {pending.number}")
    if approved is not None:
        old = parse_policy(approved.text, f"{name} version {approved.number}")
    else:
        old = Policy(new.metadata, new.repository)
    changes = diff_policies(old, new)
    if as_json:
        report = {
            "policy": name,
            "approved": approved.number if approved else None,
            "pending": pending.number,
            "equal": not changes,
            "changes": [change_to_json(c) for c in changes],
        }
        stdout.out(dumps(report))
    else:
        base = f"version {approved.number} (approved)" if approved else "nothing approved"
        stdout.out(f"policy {name}: version {pending.number} (pending) against {base}")
        for change in changes:
            stdout.out(describe(change))
        if not changes:
            stdout.out("no differences")
    if changes:
        sys.exit(1)


@policy_app.command("approve")
@reports_errors
def approve_command(
    name: NameArg,
    version: VersionOpt = None,
    comment: CommentOpt = None,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a pending version (default: the newest pending one): from now on it runs.

    The version approved before it, and older pending versions, become
    superseded.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed, 5 plug-in missing.
    """
    with opened(catalog) as store:
        decided = store.approve(name, version, by=user(), comment=comment)
    _decided(decided, as_json)


@policy_app.command("reject")
@reports_errors
def reject_command(
    name: NameArg,
    version: VersionOpt = None,
    comment: CommentOpt = None,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject a pending version (default: the newest pending one); the approved one keeps running.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed, 5 plug-in missing.
    """
    with opened(catalog) as store:
        decided = store.reject(name, version, by=user(), comment=comment)
    _decided(decided, as_json)


def _decided(version: PolicyVersion, as_json: bool) -> None:
    if as_json:
        stdout.out(dumps(_summary(version)))
    else:
        stdout.out(f"policy {version.policy}: version {version.number} {version.state}")


def _summary(version: PolicyVersion) -> dict[str, object]:
    """A version without its text (``policy show --json`` has the text)."""
    data = to_json(version)
    del data["text"]
    return data
