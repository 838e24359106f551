"""``haprotect drift``: does a policy still cover the cluster's HA data?"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from haprotect.cli.app import app, reports_errors, stdout
from haprotect.cli.options import NoCliOpt


@app.command("drift")
@reports_errors
def drift_command(
    policy_file: Annotated[Path, typer.Argument(help="The policy to check.", metavar="POLICY")],
    source: Annotated[
        str | None,
        typer.Option(help="Cluster to compare with; default: the source the policy names."),
    ] = None,
    no_cli: NoCliOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Compare a policy with the cluster as it is now.

    Lists HA data the policy does not cover (new file systems, databases),
    items whose data set is gone or changed, and applications whose tiers
    changed. Exits 1 when the policy no longer covers every HA data set
    (regenerate it with `haprotect plan` and compare with `haprotect diff`).
    A failover is not drift.

    Exit status: 0 covered, 1 not covered, 2 bad usage, 3 unreadable input,
    4 component failed, 5 plug-in missing.
    """
    from haprotect.policy.drift import check_drift
    from haprotect.policy.io import load_policy
    from haprotect.sources import DiscoverOptions, discover

    policy = load_policy(policy_file)
    url = source or policy.metadata.source
    report = check_drift(policy, discover(url, DiscoverOptions(use_cli=not no_cli)))
    if as_json:
        stdout.out(
            json.dumps(
                {
                    "covered": report.covered,
                    "fingerprint_matches": report.fingerprint_matches,
                    "findings": [
                        {
                            "kind": f.kind.value,
                            "cluster": f.cluster,
                            "subject": f.subject,
                            "detail": f.detail,
                        }
                        for f in report.findings
                    ],
                }
            )
        )
    else:
        for f in report.findings:
            stdout.print(f"{f.kind.value:11} {f.cluster}/{f.subject}: {f.detail}", markup=False)
        verdict = "covers" if report.covered else "does NOT cover"
        stdout.print(
            f"{policy_file}: the policy {verdict} the cluster's HA data "
            f"({len(report.findings)} finding(s))",
            markup=False,
        )
    if not report.covered:
        sys.exit(1)
