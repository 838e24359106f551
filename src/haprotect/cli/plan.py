"""``haprotect plan``: generate a policy from what a cluster makes highly available."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from haprotect.cli.app import app, reports_errors, stderr, stdout
from haprotect.cli.options import NoCliOpt, SourceArg

if TYPE_CHECKING:
    from haprotect.model.policy import Policy


@app.command("plan")
@reports_errors
def plan_command(
    source: SourceArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the policy here (YAML) instead of stdout."),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="Rules file overriding the defaults (see haprotect rules --show-defaults).",
        ),
    ] = None,
    no_cli: NoCliOpt = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Stdout is JSON: the policy itself without -o, else a summary of the file.",
        ),
    ] = False,
) -> None:
    """Generate a data protection policy for a cluster, every decision with its reason.

    Discovers the cluster, applies the rules (HA data gets a higher priority,
    a tighter schedule, longer retention and more copies; replicated data is
    read from a standby; the tiers of an application form one consistency
    group) and writes a policy for review: `haprotect explain` says why, and
    `haprotect validate` checks it after editing. No input is asked for.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed,
    5 plug-in missing.
    """
    from haprotect.policy.generate import generate, unused_dataset_rules
    from haprotect.policy.io import dump_policy, policy_json, write_text
    from haprotect.policy.rules_file import load_rules
    from haprotect.sources import DiscoverOptions, discover

    chosen = load_rules(rules)
    topology = discover(source, DiscoverOptions(use_cli=not no_cli))
    policy = generate(
        topology, chosen, source=source, now=datetime.now(UTC), generator=_generator()
    )
    for key in unused_dataset_rules(topology, chosen):
        stderr.print(f"haprotect: warning: rules datasets.{key} matches no data set", markup=False)
    if output is None:
        stdout.out(policy_json(policy) if as_json else dump_policy(policy), end="")
    else:
        write_text(output, dump_policy(policy))
    if as_json and output is not None:
        stdout.out(json.dumps(_summary(policy, output)))
    elif not as_json:
        stderr.print(_summary_line(policy, output), markup=False)


def _generator() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"haprotect {version('haprotect')}"
    except PackageNotFoundError:
        return "haprotect"


def _summary(policy: Policy, output: Path) -> dict[str, object]:
    return {
        "written": str(output),
        "clusters": list(policy.metadata.clusters),
        "items": [f"{i.cluster}/{i.dataset}" for i in policy.items],
        "groups": [f"{g.cluster}/{g.name}" for g in policy.groups],
        "excluded": [f"{e.cluster}/{e.dataset}" for e in policy.excluded],
        "topology_fingerprint": policy.metadata.topology_fingerprint,
    }


def _summary_line(policy: Policy, output: Path | None) -> str:
    ha = sum(1 for i in policy.items if i.what.ha)
    where = f"wrote {output}: " if output is not None else ""
    return (
        f"{where}{_count(len(policy.items), 'item')} ({ha} HA), "
        f"{_count(len(policy.groups), 'consistency group')}, "
        f"{len(policy.excluded)} excluded; clusters {', '.join(policy.metadata.clusters)}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
