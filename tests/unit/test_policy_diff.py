"""Semantic diff of two policies."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from haprotect.model.policy import Policy, Priority
from haprotect.policy import ChangeKind, diff_policies, generate, parse_rules
from haprotect.policy.diff import Change, change_to_json, describe
from haprotect.testing.builders import shared, topology, web_cluster

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def sample(rules_text: str = "# defaults\n", **kwargs: object) -> Policy:
    cluster = web_cluster()
    if kwargs.get("extra"):
        cluster = replace(cluster, datasets=(*cluster.datasets, shared("fs_new")))
    rules = parse_rules(rules_text, "r.yaml")
    return generate(topology(cluster), rules, source="pacemaker://", now=NOW)


def test_identical_policies_have_no_changes() -> None:
    assert diff_policies(sample(), sample()) == ()


def test_generation_time_reasons_and_order_are_not_differences() -> None:
    old = sample()
    new = replace(
        old,
        metadata=replace(old.metadata, generated_at=datetime(2026, 1, 1, tzinfo=UTC)),
        items=tuple(replace(i, reasons=()) for i in reversed(old.items)),
    )
    assert diff_policies(old, new) == ()


def test_changed_fields_are_reported_by_item_and_field() -> None:
    old = sample()
    new = sample('ha: {schedule: "*/15 * * * *", retention: {keep_daily: 30}}\n')
    changes = [c for c in diff_policies(old, new) if c.section == "item"]
    assert (
        Change("item", "c1/fs_data", ChangeKind.CHANGED, "schedule", "0 * * * *", "*/15 * * * *")
        in changes
    )
    assert (
        Change("item", "c1/pg_data", ChangeKind.CHANGED, "retention.keep_daily", 14, 30) in changes
    )
    assert len(changes) == 4


def test_added_and_removed_items_and_exclusions() -> None:
    old = sample()
    new = sample("include_non_ha: true\n", extra=True)
    changes = diff_policies(old, new)
    kinds = {(c.section, c.key, c.kind) for c in changes}
    assert ("item", "c1/fs_new", ChangeKind.ADDED) in kinds
    assert ("item", "c1/scratch", ChangeKind.ADDED) in kinds
    assert ("excluded", "c1/scratch", ChangeKind.REMOVED) in kinds
    assert any(c.field == "topology_fingerprint" for c in changes)
    back = {(c.section, c.key, c.kind) for c in diff_policies(new, old)}
    assert ("item", "c1/fs_new", ChangeKind.REMOVED) in back


def test_group_changes_name_the_tier() -> None:
    old = sample()
    group = old.groups[0]
    tiers = (group.tiers[0], replace(group.tiers[1], datasets=()), group.tiers[2])
    new = replace(old, groups=(replace(group, tiers=tiers),))
    (change,) = diff_policies(old, new)
    assert change == Change(
        "group", "c1/grp_web", ChangeKind.CHANGED, "tiers.database.datasets", ["pg_data"], []
    )


def test_repository_change_is_a_spec_change() -> None:
    old = sample()
    new = sample("where: s3://bucket/x\n")
    changes = diff_policies(old, new)
    assert (
        Change(
            "spec",
            "spec",
            ChangeKind.CHANGED,
            "repository",
            "file:///var/lib/haprotect/repository",
            "s3://bucket/x",
        )
        in changes
    )


def test_describe_and_json_forms() -> None:
    changed = Change("item", "c1/x", ChangeKind.CHANGED, "priority", Priority.HIGH.value, "low")
    assert describe(changed) == "~ item c1/x: priority 'high' -> 'low'"
    assert describe(Change("item", "c1/y", ChangeKind.ADDED)) == "+ item c1/y"
    assert describe(Change("excluded", "c1/z", ChangeKind.REMOVED)) == "- excluded c1/z"
    lists = Change("group", "c1/g", ChangeKind.CHANGED, "restore_order", ["a", "b"], ["b", "a"])
    assert describe(lists) == "~ group c1/g: restore_order [a, b] -> [b, a]"
    assert change_to_json(changed) == {
        "section": "item",
        "key": "c1/x",
        "kind": "changed",
        "field": "priority",
        "old": "high",
        "new": "low",
    }
