"""``haprotect validate``: check a policy file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from haprotect.cli.app import app, reports_errors, stdout


@app.command("validate")
@reports_errors
def validate_command(
    policy_file: Annotated[
        Path, typer.Argument(help="Policy file (YAML or JSON).", metavar="POLICY")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"ok": true, ...} instead of a line of text.')
    ] = False,
) -> None:
    """Check a policy file: its format, schedules, counts, repositories and group orders.

    Schedules must be cron expressions that fire (`0 0 30 2 *` never does),
    copies and retention counts stay under their documented maxima,
    repositories must be a known kind of store and not a device, and no
    tiers may depend on each other in a cycle.

    Exits 0 and prints one line when the policy is valid. Otherwise prints one
    line naming the file, the line and the field, e.g.
    `p.yaml:14: spec.items[2].schedule: invalid cron expression '61 * * * *'`.

    Exit status: 0 valid, 2 bad usage, 3 unreadable input.
    """
    from haprotect.policy.io import load_policy

    policy = load_policy(policy_file)
    counts = {
        "items": len(policy.items),
        "groups": len(policy.groups),
        "excluded": len(policy.excluded),
    }
    if as_json:
        stdout.out(json.dumps({"ok": True, "file": str(policy_file), **counts}))
        return
    items, groups = counts["items"], counts["groups"]
    stdout.print(
        f"{policy_file}: OK ({items} item{'' if items == 1 else 's'}, "
        f"{groups} group{'' if groups == 1 else 's'}, {counts['excluded']} excluded)",
        markup=False,
    )
