"""``haprotect explain``: why each item of a policy is protected as it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from haprotect.cli.app import app, reports_errors, stdout
from haprotect.errors import UsageError

if TYPE_CHECKING:
    from rich.text import Text
    from rich.tree import Tree

    from haprotect.policy.explain import Explained, Line


@app.command("explain")
@reports_errors
def explain_command(
    policy_file: Annotated[
        Path, typer.Argument(help="Policy file (YAML or JSON).", metavar="POLICY")
    ],
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", "-d", help="Explain only this data set (id or cluster/id)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
) -> None:
    """Explain a policy: each decision of each item, its value, why, and the
    cluster object or rule it came from; then the consistency groups with
    their quiesce and restore orders, and the data sets left out.

    Exit status: 0 success, 2 bad usage, 3 unreadable input.
    """
    from rich.text import Text
    from rich.tree import Tree

    from haprotect.policy.explain import explain, explanation_to_json
    from haprotect.policy.io import load_policy

    explanation = explain(load_policy(policy_file), only=dataset)
    if dataset is not None and not explanation.items and not explanation.excluded:
        raise UsageError(f"{policy_file}: no data set {dataset!r} in the policy")
    if as_json:
        stdout.out(json.dumps(explanation_to_json(explanation), indent=2))
        return
    stdout.print(Text(explanation.title, style="bold"))
    for explained in (*explanation.items, *explanation.groups):
        stdout.print(_tree(explained), soft_wrap=False)
    if explanation.excluded:
        tree = Tree(Text("excluded", style="bold"))
        for line in explanation.excluded:
            tree.add(Text(line.value, style="bold")).add(_because(line))
        stdout.print(tree, soft_wrap=False)


def _tree(explained: Explained) -> Tree:
    from rich.text import Text
    from rich.tree import Tree

    tree = Tree(Text.assemble((explained.key, "bold"), "  ", explained.title))
    branches: dict[str, Tree] = {}
    for line in explained.lines:
        if line.decision not in branches:
            label = Text.assemble((line.decision, "cyan"), ": ", line.value)
            branches[line.decision] = tree.add(label)
        branches[line.decision].add(_because(line))
    return tree


def _because(line: Line) -> Text:
    from rich.text import Text

    text = Text(line.because)
    if line.source:
        text.append(f"  [{line.source}]", style="dim")
    return text
