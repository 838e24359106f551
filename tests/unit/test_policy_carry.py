"""Regenerating a policy after drift keeps the administrator's edits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from haprotect.model.policy import Decision, Policy, Priority
from haprotect.model.topology import Cluster
from haprotect.policy.carry import EDIT_SOURCE, carry_edits
from haprotect.policy.drift import check_drift
from haprotect.policy.generate import generate
from haprotect.policy.rules_file import load_rules
from haprotect.testing.builders import shared, topology, web_cluster


def policy_for(cluster: Cluster) -> Policy:
    return generate(topology(cluster), load_rules(None), source="x://", now=datetime.now(UTC))


def grown(cluster: Cluster) -> Cluster:
    new = shared("fs_new", "node1", location={"directory": "/srv/new"})
    return replace(cluster, datasets=(*cluster.datasets, new))


def test_an_edited_schedule_is_kept_and_new_data_comes_in() -> None:
    cluster = web_cluster()
    base = policy_for(cluster)
    first = base.items[0]
    edited = replace(
        base,
        items=(replace(first, schedule="7 1 * * *", priority=Priority.LOW), *base.items[1:]),
    )
    regenerated = policy_for(grown(cluster))
    carried = carry_edits(base, edited, regenerated)
    items = {i.dataset: i for i in carried.policy.items}
    assert "fs_new" in items
    kept = items[first.dataset]
    assert (kept.schedule, kept.priority) == ("7 1 * * *", Priority.LOW)
    assert {e.field for e in carried.edits} == {"schedule", "priority"}
    sources = {r.decision: r.source for r in kept.reasons}
    assert sources[Decision.SCHEDULE] == EDIT_SOURCE
    assert sources[Decision.PRIORITY] == EDIT_SOURCE
    assert sources[Decision.WHERE] != EDIT_SOURCE
    assert check_drift(carried.policy, topology(grown(cluster))).covered


def test_without_edits_the_regenerated_policy_is_taken_whole() -> None:
    cluster = web_cluster()
    base = policy_for(cluster)
    regenerated = policy_for(grown(cluster))
    carried = carry_edits(base, base, regenerated)
    assert carried.edits == ()
    assert carried.policy.items == regenerated.items
    assert carried.policy.groups == regenerated.groups


def test_an_item_the_administrator_removed_stays_out_and_is_not_drift() -> None:
    cluster = web_cluster()
    base = policy_for(cluster)
    gone = base.items[-1]
    edited = replace(base, items=base.items[:-1])
    carried = carry_edits(base, edited, policy_for(grown(cluster)))
    assert gone.key not in {i.key for i in carried.policy.items}
    excluded = {e.key: e for e in carried.policy.excluded}
    assert excluded[gone.key].source == EDIT_SOURCE
    report = check_drift(carried.policy, topology(grown(cluster)))
    assert gone.dataset not in {f.subject for f in report.findings}


def test_the_cluster_facts_are_always_the_new_generations() -> None:
    cluster = web_cluster()
    base = policy_for(cluster)
    first = base.items[0]
    edited = replace(base, items=(replace(first, copies=first.copies + 1), *base.items[1:]))
    moved = replace(
        cluster,
        datasets=tuple(
            replace(d, location={**d.location, "directory": "/srv/moved"})
            if d.id == first.dataset
            else d
            for d in cluster.datasets
        ),
    )
    regenerated = policy_for(moved)
    new_first = next(i for i in regenerated.items if i.key == first.key)
    carried = carry_edits(base, edited, regenerated)
    kept = next(i for i in carried.policy.items if i.key == first.key)
    assert kept.what == new_first.what
    assert kept.copies == first.copies + 1
    assert carried.policy.metadata.topology_fingerprint == regenerated.metadata.topology_fingerprint


def test_an_edited_repository_and_tier_quiescers_are_kept() -> None:
    cluster = web_cluster()
    base = policy_for(cluster)
    assert base.groups, "the web cluster is one application"
    group = base.groups[0]
    tier = next(t for t in group.tiers if t.quiesce)
    edited_tier = replace(tier, quiesce=())
    tiers = tuple(edited_tier if t.name == tier.name else t for t in group.tiers)
    edited = replace(
        base, repository="/srv/elsewhere", groups=(replace(group, tiers=tiers), *base.groups[1:])
    )
    carried = carry_edits(base, edited, policy_for(grown(cluster)))
    assert carried.policy.repository == "/srv/elsewhere"
    new_group = next(g for g in carried.policy.groups if g.key == group.key)
    assert next(t for t in new_group.tiers if t.name == tier.name).quiesce == ()
    assert {e.field for e in carried.edits} == {"repository", "quiesce"}


def test_without_a_known_base_every_choice_of_the_approved_policy_is_kept() -> None:
    cluster = web_cluster()
    approved = policy_for(cluster)
    first = approved.items[0]
    approved = replace(approved, items=(replace(first, schedule="9 9 * * *"), *approved.items[1:]))
    carried = carry_edits(None, approved, policy_for(grown(cluster)))
    items = {i.dataset: i for i in carried.policy.items}
    assert items[first.dataset].schedule == "9 9 * * *"
    assert "fs_new" in items
    assert [e.field for e in carried.edits] == ["schedule"]
