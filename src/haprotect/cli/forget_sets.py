"""How ``haprotect repo forget`` shows its decisions on snapshot sets."""

from __future__ import annotations

from typing import Any

from haprotect.cli.app import stdout
from haprotect.cli.repo_common import local_time
from haprotect.engine.set_retention import SetGroup


def set_group_json(group: SetGroup) -> dict[str, Any]:
    return {
        "group": group.key,
        "sets": [
            {
                "id": d.set.id,
                "started": d.set.started.isoformat(),
                "complete": d.set.complete,
                "keep": d.keep,
                "reasons": list(d.reasons),
                "snapshots": [s.id for s in d.snapshots],
            }
            for d in group.decisions
        ],
    }


def print_set_group(group: SetGroup) -> None:
    from rich.table import Table

    key = ", ".join(f"{k} {v}" for k, v in group.key.items())
    stdout.print(f"sets of {key}", markup=False)
    table = Table(
        "Set", "Started", "Complete", "Snapshots", "Decision", "Why", box=None, padding=(0, 1)
    )
    for d in group.decisions:
        table.add_row(
            d.set.id,
            local_time(d.set.started),
            "yes" if d.set.complete else "no",
            str(len(d.snapshots)),
            "keep" if d.keep else "remove",
            "; ".join(d.reasons),
        )
    stdout.print(table)
