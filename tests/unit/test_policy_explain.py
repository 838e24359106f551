"""Explanations: every decision with its value and reasons."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from haprotect.model.policy import Policy, Retention
from haprotect.policy import default_rules, explain, generate
from haprotect.policy.explain import NO_REASON, explanation_to_json, retention_text
from haprotect.testing.builders import topology, web_cluster

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def policy() -> Policy:
    return generate(topology(web_cluster()), default_rules(), source="pacemaker://", now=NOW)


def test_each_item_decision_has_value_reason_and_source() -> None:
    explanation = explain(policy())
    fs = next(e for e in explanation.items if e.key == "c1/fs_data")
    decisions = {line.decision: line for line in fs.lines}
    assert list(decisions) == [
        "include",
        "priority",
        "schedule",
        "where",
        "retention",
        "copies",
        "read_from",
        "group",
    ]
    assert decisions["priority"].value == "high"
    assert decisions["read_from"].value == "standby node2 (max lag 300s, else primary)"
    assert decisions["group"].value == "grp_web, tier storage"
    assert decisions["group"].source == "application grp_web"
    assert all(line.because and line.source for line in fs.lines)


def test_groups_and_exclusions_are_explained() -> None:
    explanation = explain(policy())
    (group,) = explanation.groups
    orders = {line.decision: line.value for line in group.lines}
    assert orders["quiesce_order"] == "frontend -> database -> storage"
    assert orders["restore_order"] == "storage -> database -> frontend"
    (excluded,) = explanation.excluded
    assert excluded.value == "c1/scratch" and "not HA" in excluded.because
    assert explanation.title.startswith("policy c1: 2 items, 1 group, 1 excluded")


def test_a_decision_without_reason_says_so() -> None:
    p = policy()
    edited = replace(p, items=(replace(p.items[0], reasons=()), *p.items[1:]))
    lines = explain(edited).items[0].lines
    assert {line.because for line in lines} == {NO_REASON}
    assert len(lines) == 8


def test_only_one_dataset() -> None:
    explanation = explain(policy(), only="c1/pg_data")
    assert [e.key for e in explanation.items] == ["c1/pg_data"]
    assert explanation.groups == () and explanation.excluded == ()
    assert [x.value for x in explain(policy(), only="scratch").excluded] == ["c1/scratch"]


def test_json_form() -> None:
    data = explanation_to_json(explain(policy()))
    assert [i["key"] for i in data["items"]] == ["c1/fs_data", "c1/pg_data"]
    assert data["items"][0]["lines"][0]["decision"] == "include"
    assert data["excluded"][0]["source"] == "dataset scratch"


def test_retention_text_leaves_out_zeros() -> None:
    assert retention_text(Retention(keep_daily=7, keep_yearly=6)) == "7 daily, 6 yearly"
