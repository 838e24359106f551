"""The drift job: the cluster read again, a policy regenerated for review when it lost cover.

``haprotect drift`` compares the approved policy with the cluster. When HA
data is not covered, ``haprotect plan`` generates the policy again with the
rules it was generated with, the administrator's edits are carried over
(:func:`haprotect.policy.carry.carry_edits`, against the newest version the
service itself generated, when there is one), and the result is applied as
a new version: pending, for an administrator to approve, unless the rules
say ``auto_approve``. An alert names what is not covered and what edits
were kept. The same regeneration is not applied twice: a second drift run
that finds the same cluster adds no version and raises no second alert.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haprotect.catalog.records import PolicyVersion, Run, VersionState
from haprotect.model.policy import Policy
from haprotect.service.aftermath import RunContext
from haprotect.service.commands import drift_args, plan_args

#: Who the catalog says made the versions the drift job applies.
DRIFT_AUTHOR = "haprotect-drift"


@dataclass(frozen=True, slots=True)
class DriftOutcome:
    """What a drift run found: ``findings`` one line each; ``applied`` the new version."""

    covered: bool
    findings: tuple[str, ...] = ()
    applied: PolicyVersion | None = None
    kept_edits: tuple[str, ...] = ()
    error: str | None = None


def watch_drift(
    ctx: RunContext,
    run: Run,
    version: PolicyVersion,
    policy: Policy,
    policy_file: Path,
    work_dir: Path,
    cancel: threading.Event | None = None,
    *,
    auto_approve: bool = False,
) -> DriftOutcome:
    """Check ``policy`` against its cluster; regenerate and apply a version when it lost cover."""
    from haprotect.policy.carry import carry_edits
    from haprotect.policy.diff import diff_policies
    from haprotect.policy.io import dump_policy, load_policy, parse_policy

    checked = ctx.child(run, drift_args(policy_file), cancel)
    report = checked.last or {}
    if checked.exit_code not in (0, 1) or "covered" not in report:
        return DriftOutcome(False, error=checked.error or f"drift exited {checked.exit_code}")
    findings = tuple(_finding(f) for f in report.get("findings", ()))
    if report["covered"]:
        return DriftOutcome(True, findings)
    work_dir.mkdir(parents=True, exist_ok=True)
    output = work_dir / f"regenerated-{run.id}.yaml"
    rules = policy.metadata.rules.file
    planned = ctx.child(run, plan_args(policy.metadata.source, rules, output), cancel)
    if planned.status != "completed":
        return DriftOutcome(False, findings, error=f"regenerating failed: {planned.error}")
    regenerated = load_policy(output)
    versions = ctx.catalog.versions(version.policy)
    base = _generated_base(versions, version, parse_policy)
    carried = carry_edits(base, policy, regenerated)
    if not diff_policies(policy, carried.policy):
        return DriftOutcome(False, findings)
    latest = versions[-1]
    if latest.state is VersionState.PENDING and not diff_policies(
        parse_policy(latest.text, f"policy {latest.policy} version {latest.number}"),
        carried.policy,
    ):
        return DriftOutcome(False, findings)
    applied = ctx.catalog.apply_policy(
        version.policy, dump_policy(carried.policy), by=DRIFT_AUTHOR, auto_approve=auto_approve
    )
    kept = tuple(e.describe() for e in carried.edits)
    return DriftOutcome(False, findings, applied.version if applied.created else None, kept)


def _generated_base(
    versions: Sequence[PolicyVersion], approved: PolicyVersion, parse: Any
) -> Policy | None:
    """The newest version this job generated that was approved, up to the approved one.

    The approved version is that one with the administrator's edits (or
    that one itself); a generated version never approved is no one's base.
    """
    ever_approved = (VersionState.APPROVED, VersionState.SUPERSEDED)
    for version in reversed(versions):
        if (
            version.number <= approved.number
            and version.created_by == DRIFT_AUTHOR
            and version.state in ever_approved
            and version.decided_at is not None
        ):
            policy: Policy = parse(
                version.text, f"policy {version.policy} version {version.number}"
            )
            return policy
    return None


def _finding(finding: Mapping[str, Any]) -> str:
    return (
        f"{finding.get('kind')} {finding.get('cluster')}/{finding.get('subject')}: "
        f"{finding.get('detail')}"
    )


def describe(outcome: DriftOutcome) -> Sequence[str]:
    """The lines of a drift alert."""
    lines = list(outcome.findings)
    if outcome.applied is not None:
        state = outcome.applied.state.value
        lines.append(f"version {outcome.applied.number} of the policy covers it ({state})")
    lines += [f"kept: {edit}" for edit in outcome.kept_edits]
    return lines
