"""``haprotect diff``: what changed between two policies."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from haprotect.cli.app import app, reports_errors, stdout


@app.command("diff")
@reports_errors
def diff_command(
    old: Annotated[Path, typer.Argument(help="The earlier policy file.")],
    new: Annotated[Path, typer.Argument(help="The later policy file.")],
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"equal": ..., "changes": [...]} as JSON.'),
    ] = False,
) -> None:
    """Show the semantic differences between two policies.

    Items are matched by cluster and data set, groups by cluster and name, so
    reordering a file changes nothing; reasons and the generation time are not
    compared. Each change is one line: `+ item c1/fs_new` (added),
    `- item c1/fs_old` (removed), `~ item c1/fs_data: schedule '0 * * * *' -> '*/15 * * * *'`
    (changed). A changed metadata.topology_fingerprint means the cluster's
    definition changed.

    As diff(1), it exits 1 when the policies differ.

    Exit status: 0 no differences, 1 differences, 2 bad usage, 3 unreadable input.
    """
    from haprotect.policy.diff import change_to_json, describe, diff_policies
    from haprotect.policy.io import load_policy

    changes = diff_policies(load_policy(old), load_policy(new))
    if as_json:
        report = {"equal": not changes, "changes": [change_to_json(c) for c in changes]}
        stdout.out(json.dumps(report, indent=2))
    elif changes:
        for change in changes:
            stdout.out(describe(change))
    else:
        stdout.out(f"{old} and {new}: no differences")
    if changes:
        sys.exit(1)
