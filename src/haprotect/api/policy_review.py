"""What the API and the console show of policies under review: summaries and differences."""

from __future__ import annotations

from collections import defaultdict

from haprotect.api import schemas
from haprotect.catalog import Catalog
from haprotect.catalog.records import PolicyVersion, VersionState
from haprotect.model.policy import Policy
from haprotect.policy import diff_policies, parse_policy
from haprotect.policy.diff import Change


def summaries(catalog: Catalog) -> list[schemas.PolicySummary]:
    """Every policy by name: its newest version, the approved one, the pending ones."""
    by_policy: dict[str, list[PolicyVersion]] = defaultdict(list)
    for version in catalog.versions():
        by_policy[version.policy].append(version)
    return [
        schemas.PolicySummary(
            name=name,
            latest=max(v.number for v in versions),
            approved=next((v.number for v in versions if v.state is VersionState.APPROVED), None),
            pending=[v.number for v in versions if v.state is VersionState.PENDING],
        )
        for name, versions in sorted(by_policy.items())
    ]


def parsed(version: PolicyVersion) -> Policy:
    """The policy a stored version holds."""
    return parse_policy(version.text, f"policy {version.policy} version {version.number}")


def changes_between(before: PolicyVersion | None, after: PolicyVersion) -> tuple[Change, ...]:
    """What ``after`` changes from ``before``; with no ``before``, every item of it is added."""
    newer = parsed(after)
    older = Policy(newer.metadata, newer.repository) if before is None else parsed(before)
    return diff_policies(older, newer)
