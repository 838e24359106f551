"""Drift: does a policy still cover what the cluster makes highly available?

Clusters change without telling their backup administrators. Drift compares
a policy with the cluster's current topology and lists what no longer fits:

uncovered
    HA data the policy neither protects nor excludes: a new file system, a
    new database. This is the finding that loses data; it makes the check fail.
stale
    An item or exclusion whose data set is gone from the cluster.
changed
    A protected data set whose definition moved under the policy: another
    location, kind, replication, or it stopped being HA.
application
    A consistency group whose application gained, lost or reordered tiers.

Where things run now (which node is primary) is not drift: a plan reads
placement at run time, so a failover needs no new policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from haprotect.model.policy import Policy
from haprotect.model.topology import DataSet, Topology
from haprotect.policy.fingerprint import topology_fingerprint
from haprotect.redact import redact_value


class DriftKind(StrEnum):
    """The kinds of drift (see the module docstring)."""

    UNCOVERED = "uncovered"
    STALE = "stale"
    CHANGED = "changed"
    APPLICATION = "application"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that no longer fits; ``loses_data`` for those that leave HA data unprotected."""

    kind: DriftKind
    cluster: str
    subject: str  #: a data set id or an application name
    detail: str

    @property
    def loses_data(self) -> bool:
        return self.kind in (DriftKind.UNCOVERED, DriftKind.CHANGED)


@dataclass(frozen=True, slots=True)
class DriftReport:
    """What drift found, and whether the topology still has the policy's fingerprint."""

    findings: tuple[Finding, ...]
    fingerprint_matches: bool

    @property
    def covered(self) -> bool:
        """True when no HA data is left unprotected by the policy."""
        return not any(f.loses_data for f in self.findings)


def check_drift(policy: Policy, topology: Topology) -> DriftReport:
    findings: list[Finding] = []
    items = {item.key: item for item in policy.items}
    excluded = {ex.key for ex in policy.excluded}
    seen: set[tuple[str, str]] = set()
    for cluster in topology.clusters:
        for ds in cluster.datasets:
            key = (cluster.name, ds.id)
            seen.add(key)
            item = items.get(key)
            if item is None:
                if key not in excluded and ds.ha:
                    findings.append(
                        Finding(
                            DriftKind.UNCOVERED,
                            cluster.name,
                            ds.id,
                            f"{ds.kind} {ds.id} is HA ({_why(ds)}) and the policy "
                            "neither protects nor excludes it",
                        )
                    )
                continue
            what = item.what
            changes = [
                f"{name} {old!r} -> {new!r}"
                for name, old, new in (
                    ("kind", what.kind, ds.kind),
                    ("location", what.location, _redacted(ds.location)),
                    ("replication", what.replication.value, ds.replication.value),
                    ("ha", what.ha, ds.ha),
                )
                if old != new
            ]
            if changes:
                findings.append(Finding(DriftKind.CHANGED, cluster.name, ds.id, "; ".join(changes)))
        for group in policy.groups:
            if group.cluster != cluster.name:
                continue
            app = next((a for a in cluster.applications if a.name == group.name), None)
            if app is None:
                findings.append(
                    Finding(
                        DriftKind.APPLICATION,
                        cluster.name,
                        group.name,
                        "the application is gone from the cluster",
                    )
                )
                continue
            now = [t.name for t in app.tiers]
            planned = [t.name for t in group.tiers]
            if now != planned:
                findings.append(
                    Finding(
                        DriftKind.APPLICATION, cluster.name, group.name, f"tiers {planned} -> {now}"
                    )
                )
    for key in [*items, *excluded]:
        if key not in seen and key[0] in {c.name for c in topology.clusters}:
            findings.append(
                Finding(DriftKind.STALE, key[0], key[1], "the data set is gone from the cluster")
            )
    matches = topology_fingerprint(topology) == policy.metadata.topology_fingerprint
    return DriftReport(tuple(findings), matches)


def _why(ds: DataSet) -> str:
    return "; ".join(ds.why) or ds.replication.value


def _redacted(location: dict[str, str]) -> dict[str, str]:
    """Policies hold redacted locations; compare like with like."""
    return {k: redact_value(k, v) for k, v in location.items()}
