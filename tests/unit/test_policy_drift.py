"""Drift: a policy against the cluster as it is now."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from haprotect.model.policy import Policy
from haprotect.model.topology import Cluster, Replication, Topology
from haprotect.policy.drift import DriftKind, check_drift
from haprotect.policy.generate import generate
from haprotect.policy.rules_file import load_rules
from haprotect.testing.builders import shared, topology, web_cluster


def policy_for(cluster: Cluster) -> Policy:
    return generate(topology(cluster), load_rules(None), source="x://", now=datetime.now(UTC))


def kinds(policy: Policy, current: Topology) -> list[tuple[DriftKind, str]]:
    return [(f.kind, f.subject) for f in check_drift(policy, current).findings]


def test_an_unchanged_cluster_has_no_drift() -> None:
    cluster = web_cluster()
    report = check_drift(policy_for(cluster), topology(cluster))
    assert report.findings == () and report.covered and report.fingerprint_matches


def test_new_ha_data_is_uncovered_and_fails_the_check() -> None:
    cluster = web_cluster()
    policy = policy_for(cluster)
    grown = replace(
        cluster,
        datasets=(*cluster.datasets, shared("fs_new", "node1", location={"directory": "/srv/new"})),
    )
    report = check_drift(policy, topology(grown))
    assert [(f.kind, f.subject) for f in report.findings] == [(DriftKind.UNCOVERED, "fs_new")]
    assert not report.covered and not report.fingerprint_matches


def test_a_failover_is_not_drift() -> None:
    cluster = web_cluster()
    policy = policy_for(cluster)
    swapped = replace(
        cluster,
        datasets=tuple(
            replace(d, primary=d.standbys[0], standbys=(d.primary,))
            if d.primary and d.standbys
            else d
            for d in cluster.datasets
        ),
    )
    assert swapped != cluster
    report = check_drift(policy, topology(swapped))
    assert report.findings == () and report.fingerprint_matches


def test_changed_and_removed_data_sets_are_reported() -> None:
    cluster = web_cluster()
    policy = policy_for(cluster)
    first, *rest = [d for d in cluster.datasets if d.ha]
    moved = replace(
        first,
        location={**first.location, "directory": "/elsewhere"},
        replication=Replication.LOCAL,
        ha=False,
    )
    gone = rest[0]
    current = replace(
        cluster,
        datasets=tuple(
            moved if d.id == first.id else d for d in cluster.datasets if d.id != gone.id
        ),
    )
    found = kinds(policy, topology(current))
    assert (DriftKind.CHANGED, first.id) in found
    assert (DriftKind.STALE, gone.id) in found
    changed = next(
        f for f in check_drift(policy, topology(current)).findings if f.kind is DriftKind.CHANGED
    )
    assert "/elsewhere" in changed.detail and "replication" in changed.detail


def test_an_application_that_changed_tiers_is_reported() -> None:
    cluster = web_cluster()
    policy = policy_for(cluster)
    [application] = cluster.applications
    trimmed = replace(application, tiers=application.tiers[:-1])
    found = kinds(policy, topology(replace(cluster, applications=(trimmed,))))
    assert found == [(DriftKind.APPLICATION, application.name)]
