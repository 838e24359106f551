"""Policy files: generate -> dump -> load gives the same policy."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import yaml

from haprotect.model.policy import API_VERSION, KIND, Policy
from haprotect.policy import (
    default_rules,
    dump_policy,
    generate,
    load_policy,
    parse_policy,
    parse_rules,
    policy_json,
)
from haprotect.policy.io import write_text
from haprotect.testing.builders import cluster, replicated, topology, web_cluster

NOW = datetime(2025, 3, 1, 12, 30, 15, tzinfo=UTC)


def sample(rules_text: str = "include_non_ha: true\npresets: [hipaa]\n") -> Policy:
    topo = topology(web_cluster(), cluster("c2", datasets=[replicated("db", "n1", ("n2",))]))
    return generate(topo, parse_rules(rules_text, "r.yaml"), source="pacemaker://", now=NOW)


def test_yaml_round_trip_is_exact() -> None:
    policy = sample()
    assert parse_policy(dump_policy(policy), "p.yaml") == policy


def test_round_trip_with_default_rules_and_excluded_data() -> None:
    policy = generate(topology(web_cluster()), default_rules(), source="pacemaker://", now=NOW)
    assert policy.excluded
    assert parse_policy(dump_policy(policy), "p.yaml") == policy


def test_json_form_is_the_same_data_and_loads_as_a_policy() -> None:
    policy = sample()
    data = json.loads(policy_json(policy))
    assert data["apiVersion"] == API_VERSION and data["kind"] == KIND
    assert parse_policy(policy_json(policy), "p.json") == policy


def test_file_round_trip(tmp_path: Path) -> None:
    policy = sample()
    path = tmp_path / "policy.yaml"
    write_text(path, dump_policy(policy))
    assert load_policy(path) == policy
    assert not [p for p in tmp_path.iterdir() if p.name != "policy.yaml"]


def test_document_is_readable_yaml_with_header_and_no_anchors() -> None:
    text = dump_policy(sample())
    assert text.startswith("# haprotect policy generated from pacemaker://\n")
    assert "&id" not in text and "*id" not in text
    assert "  clusters: [c1, c2]\n" in text
    data = yaml.safe_load(text)
    assert list(data) == ["apiVersion", "kind", "metadata", "spec"]
    assert list(data["spec"]) == ["repository", "items", "groups", "excluded"]
    item = data["spec"]["items"][0]
    assert list(item)[:4] == ["dataset", "cluster", "what", "priority"]
    assert item["read_from"] == {
        "role": "standby",
        "nodes": ["node2"],
        "max_lag_seconds": 300,
        "fallback": "primary",
    }


def test_item_where_is_written_only_when_it_differs_from_the_repository() -> None:
    policy = sample()
    data = yaml.safe_load(dump_policy(policy))
    assert all("where" not in item for item in data["spec"]["items"])
    elsewhere = replace(policy.items[0], where="s3://other/place")
    edited = replace(policy, items=(elsewhere, *policy.items[1:]))
    data = yaml.safe_load(dump_policy(edited))
    assert data["spec"]["items"][0]["where"] == "s3://other/place"
    assert parse_policy(dump_policy(edited), "p.yaml") == edited


def test_changing_the_repository_moves_items_that_follow_it() -> None:
    text = dump_policy(sample()).replace(
        "repository: file:///var/lib/haprotect/repository", "repository: s3://bucket/haprotect"
    )
    policy = parse_policy(text, "p.yaml")
    assert {i.where for i in policy.items} == {"s3://bucket/haprotect"}


def test_hand_edited_policy_without_reasons_loads() -> None:
    data = yaml.safe_load(dump_policy(sample()))
    for item in data["spec"]["items"]:
        del item["reasons"]
    policy = parse_policy(yaml.safe_dump(data), "p.yaml")
    assert all(item.reasons == () for item in policy.items)
