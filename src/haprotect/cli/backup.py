"""``haprotect backup``: run a policy now, each application as one snapshot set."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from haprotect.cli.app import app, reports_errors, stderr, stdout
from haprotect.cli.options import NoCliOpt
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
from haprotect.redact import display_url

if TYPE_CHECKING:
    from haprotect.model.plan import Plan, PlanItem
    from haprotect.model.result import Result


@app.command("backup")
@reports_errors
def backup_command(
    policy_file: Annotated[Path, typer.Argument(metavar="POLICY", help="The policy to run.")],
    applications: Annotated[
        list[str] | None, typer.Option("--app", help="Only this application (repeatable).")
    ] = None,
    datasets: Annotated[
        list[str] | None,
        typer.Option("--dataset", help="Only this data set, id or cluster/id (repeatable)."),
    ] = None,
    inventory_file: InventoryOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan (nodes, movers, orders); copy nothing.")
    ] = False,
    repo_url: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    init: Annotated[
        bool, typer.Option("--init", help="Create the repository if it does not exist yet.")
    ] = False,
    wait_seconds: Annotated[
        float, typer.Option(help="How long a 'wait' fallback waits for a standby.")
    ] = 60.0,
    staging: Annotated[
        Path | None,
        typer.Option(help="Where movers stage data (default $HAPROTECT_STAGING or the temp dir)."),
    ] = None,
    no_cli: NoCliOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Back up what a policy protects, from the standby where one is healthy.

    The cluster is discovered again from the policy's source, so the run
    follows a failover without the policy being edited. Each application is
    written as one snapshot set (one snapshot per tier and data set) to the
    policy's repository, or to --repo. A set none of whose items could be
    copied leaves nothing in the repository.

    Exit status: 0 completed, 2 bad usage, 3 unreadable input, 4 component failed,
    5 plug-in missing, 6 storage failed, 7 repository refused, 10 partially failed,
    11 failed.
    """
    from haprotect.cli.run_events import JsonLines, RichProgress
    from haprotect.cli.signals import sigterm_raises
    from haprotect.engine import RunOptions, run_backup
    from haprotect.engine.planning import plan_backup
    from haprotect.plan import load_inventory
    from haprotect.policy.io import load_policy

    policy = load_policy(policy_file)
    plan = plan_backup(
        policy,
        load_inventory(inventory_file),
        use_cli=not no_cli,
        applications=applications or (),
        datasets=datasets or (),
    )
    if not plan.items:
        raise UsageError(f"{policy_file}: the policy protects nothing to back up")
    if dry_run:
        if as_json:
            sys.stdout.write(json.dumps(plan_to_json(plan), indent=2) + "\n")
        else:
            stdout.out(render_plan(plan))
        return
    options = RunOptions(staging=staging, wait_seconds=wait_seconds)
    results: list[Result] = []
    # SIGTERM and SIGHUP unwind the run, so every held tier is resumed.
    with sigterm_raises():
        for url, part in _by_repository(plan, repo_url):
            repo = open_or_init_repository(url, password_file, init=init)
            if as_json:
                results.append(run_backup(part, repo, JsonLines(), options))
                continue
            with RichProgress() as reporter:
                results.append(run_backup(part, repo, reporter, options))
            stderr.print(summary(results[-1]))
    exit_for(results)


def _by_repository(plan: Plan, repo_url: str | None) -> list[tuple[str, Plan]]:
    if repo_url is not None:
        return [(repo_url, plan)]
    return [
        (url, replace(plan, sets=tuple(s for s in plan.sets if s.repository == url)))
        for url in plan.repositories
    ]


def render_plan(plan: Plan) -> str:
    """The plan as indented text: sets, tiers in quiesce order, items with their reasons."""
    lines = [f"plan of policy {plan.policy_name} (cluster read from {plan.policy_source})"]
    lines += [f"warning: {w}" for w in plan.warnings]
    for pset in plan.sets:
        kind = "application" if pset.application else "data set"
        lines.append(f"{pset.name} ({kind}) -> {display_url(pset.repository)}")
        lines.append(f"  quiesce order (top-down): {', '.join(pset.quiesce_order)}")
        lines.append(f"  restore order (bottom-up): {', '.join(pset.restore_order)}")
        for name in pset.quiesce_order:
            tier = pset.tier(name)
            needs = f" (depends on {', '.join(tier.depends_on)})" if tier.depends_on else ""
            lines.append(f"  tier {name}{needs}" + ("" if tier.items else ": no data of its own"))
            for item in tier.items:
                lines += ["    " + line for line in _render_item(item)]
    return "\n".join(lines)


def _render_item(item: PlanItem) -> list[str]:
    from haprotect.engine.sets import node_role

    source = item.source
    if source.node is None:
        node = "no node"
    else:
        node = f"{source.node} ({node_role(source)})"
        node += " after a fallback" if source.fallback_used and not source.wait else ""
        node += ", waiting for a standby first" if source.wait else ""
    where = ", ".join(f"{k}={v}" for k, v in sorted(item.location.items()))
    lines = [
        f"{item.dataset} ({item.kind}): mover {item.mover or 'none'}, read from {node}",
        f"  location: {where or '-'}",
    ]
    lines += [f"  {r.decision}: {r.because}" for r in item.reasons if r.decision != "mover"]
    lines += [f"  problem: {p}" for p in item.problems]
    lines += [f"  note: {n}" for n in item.notes]
    return lines


def plan_to_json(plan: Plan) -> dict[str, Any]:
    from haprotect.engine.events import to_plain

    return {
        "policy": {
            "name": plan.policy_name,
            "source": plan.policy_source,
            "fingerprint": plan.policy_fingerprint,
        },
        "topology_fingerprint": plan.topology_fingerprint,
        "inventory": plan.inventory.origin,
        "created": plan.created.isoformat(),
        "warnings": list(plan.warnings),
        "sets": [to_plain(s) for s in plan.sets],
    }
