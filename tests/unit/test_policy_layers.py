"""Layered storage in policies: lower layers covered by the data on top, nesting noted."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from haprotect.model.policy import Decision, Item, Policy, What
from haprotect.model.topology import Cluster, Replication, Topology
from haprotect.model.topology_json import topology_from_json, topology_to_json
from haprotect.policy import (
    default_rules,
    diff_policies,
    dump_policy,
    explain,
    generate,
    parse_policy,
    parse_rules,
    topology_fingerprint,
)
from haprotect.policy.layers import BLOCK_KINDS
from haprotect.testing.builders import (
    cluster,
    layered_cluster,
    local,
    replicated,
    shared,
    topology,
    web_cluster,
)

NOW = datetime(2025, 3, 1, 12, 30, 15, tzinfo=UTC)

COVERED = (
    "covered by filesystem fs_pg, which lies on it and is protected: files are backed up "
    "rather than the blocks beneath them; rule protect_lower_layers is false (default)"
)


def plan(topo: Topology | Cluster, rules_text: str | None = None) -> Policy:
    rules = parse_rules(rules_text, "rules.yaml") if rules_text is not None else default_rules()
    if isinstance(topo, Cluster):
        topo = topology(topo)
    return generate(topo, rules, source="pacemaker+file:///cib.xml", now=NOW)


def includes(item: Item) -> list[tuple[str, str]]:
    return [(r.because, r.source) for r in item.reasons if r.decision is Decision.INCLUDE]


def test_block_device_under_a_protected_filesystem_is_excluded_naming_it() -> None:
    policy = plan(layered_cluster())
    assert [i.dataset for i in policy.items] == ["fs_pg", "pg"]
    (excluded,) = policy.excluded
    assert (excluded.dataset, excluded.kind, excluded.because, excluded.source) == (
        "drbd_r0",
        "drbd",
        COVERED,
        "dataset fs_pg",
    )


def test_items_record_what_they_lie_on() -> None:
    policy = plan(layered_cluster())
    assert policy.item("pg").what.backing == "fs_pg"
    assert policy.item("fs_pg").what.backing == "drbd_r0"
    assert plan(web_cluster()).item("fs_data").what.backing is None


def test_filesystem_holding_a_protected_database_says_so() -> None:
    fs = plan(layered_cluster()).item("fs_pg")
    assert includes(fs)[1:] == [
        ("pg (postgresql) lies inside it and is protected on its own", "dataset pg")
    ]
    decisions = [r.decision for r in fs.reasons]
    assert decisions[:3] == [Decision.INCLUDE, Decision.INCLUDE, Decision.PRIORITY]


def test_filesystem_holding_an_excluded_database_says_nothing_of_it() -> None:
    fs = plan(layered_cluster(), "datasets: {pg: {include: false}}\n").item("fs_pg")
    assert len(includes(fs)) == 1


def test_excluded_lower_layers_are_in_no_consistency_group() -> None:
    (group,) = plan(layered_cluster()).groups
    assert [(t.name, t.datasets) for t in group.tiers] == [
        ("storage", ("fs_pg",)),
        ("database", ("pg",)),
    ]
    assert group.tiers[0].resources == ("drbd_r0", "fs_pg")


def test_protect_lower_layers_keeps_them_and_says_why() -> None:
    policy = plan(layered_cluster(), "protect_lower_layers: true\n")
    assert policy.excluded == ()
    drbd = policy.item("drbd_r0")
    assert includes(drbd)[1:] == [
        (
            "lower layer of filesystem fs_pg, which lies on it and is protected too; its "
            "blocks are backed up as well: rule protect_lower_layers is true (from rules.yaml)",
            "dataset fs_pg",
        )
    ]
    (group,) = policy.groups
    assert group.tiers[0].datasets == ("drbd_r0", "fs_pg")


def test_a_per_dataset_include_keeps_one_lower_layer() -> None:
    policy = plan(layered_cluster(), "datasets: {c1/drbd_r0: {include: true}}\n")
    drbd = policy.item("drbd_r0")
    assert includes(drbd)[1][0].endswith(
        "its blocks are backed up as well: rule datasets.c1/drbd_r0.include is true "
        "(from rules.yaml)"
    )


def test_a_lower_layer_with_nothing_protected_on_top_is_protected() -> None:
    alone = cluster(datasets=[replicated("drbd_r0", kind="drbd")])
    assert [i.dataset for i in plan(alone).items] == ["drbd_r0"]
    under_local = cluster(
        datasets=[shared("vg", kind="lvm"), local("scratch", backing="vg")],
    )
    policy = plan(under_local)
    assert [i.dataset for i in policy.items] == ["vg"]
    assert [e.dataset for e in policy.excluded] == ["scratch"]


def test_a_data_set_on_top_excluded_by_rule_covers_nothing_directly() -> None:
    policy = plan(layered_cluster(), "datasets: {fs_pg: {include: false}}\n")
    # pg still lies on drbd_r0 through fs_pg, so the blocks are still covered
    excluded = {e.dataset: e for e in policy.excluded}
    assert excluded["drbd_r0"].because.startswith(
        "covered by postgresql pg, which lies on it through filesystem fs_pg and is protected"
    )
    policy = plan(layered_cluster(), "datasets: {fs_pg: {include: false}, pg: {include: false}}")
    assert [i.dataset for i in policy.items] == ["drbd_r0"]


def test_every_block_layer_under_a_filesystem_is_covered_through_the_others() -> None:
    c = cluster(
        datasets=[
            shared("md0", kind="md-raid"),
            shared("vg", kind="lvm", backing="md0"),
            shared("fs", backing="vg"),
        ]
    )
    policy = plan(c)
    assert [i.dataset for i in policy.items] == ["fs"]
    because = {e.dataset: e.because for e in policy.excluded}
    assert because["vg"].startswith("covered by filesystem fs, which lies on it and is protected")
    assert because["md0"].startswith(
        "covered by filesystem fs, which lies on it through lvm vg and is protected: files"
    )
    kept = plan(c, "datasets: {vg: {include: true}}\n")
    assert [i.dataset for i in kept.items] == ["vg", "fs"]
    (md0,) = kept.excluded
    assert md0.because.startswith(
        "covered by lvm vg, which lies on it and is protected: the layer on top is backed up "
        "rather than the blocks beneath it"
    )


def test_a_volume_group_under_several_filesystems_names_them_all() -> None:
    c = cluster(
        datasets=[
            shared("vg", kind="lvm"),
            shared("fs_a", backing="vg"),
            shared("fs_b", backing="vg"),
        ]
    )
    (vg,) = plan(c).excluded
    assert vg.because.startswith(
        "covered by filesystem fs_a, filesystem fs_b, which lie on it and are protected:"
    )
    assert vg.source == "dataset fs_a"


def test_only_block_level_kinds_are_lower_layers() -> None:
    assert {"drbd", "lvm", "md-raid", "iscsi-lun", "zfs"} == BLOCK_KINDS
    nested = cluster(datasets=[shared("fs"), shared("pg", kind="postgresql", backing="fs")])
    policy = plan(nested)
    assert [i.dataset for i in policy.items] == ["fs", "pg"]
    drbd = replicated("drbd1", kind="drbd")
    lun = cluster(datasets=[drbd, replicated("lun", kind="iscsi-lun", backing="drbd1")])
    (excluded,) = plan(lun).excluded
    assert excluded.because.startswith("covered by iscsi-lun lun, which lies on it")
    assert "the layer on top is backed up" in excluded.because


def test_a_backing_cycle_from_a_hand_edited_topology_ends() -> None:
    c = cluster(
        datasets=[
            shared("vg", kind="lvm", backing="fs"),
            shared("fs", backing="vg"),
        ]
    )
    policy = plan(c)
    assert [i.dataset for i in policy.items] == ["fs"]
    assert [e.dataset for e in policy.excluded] == ["vg"]
    vg = shared("vg", kind="lvm", backing="md0")
    blocks = cluster(datasets=[vg, shared("md0", kind="md-raid", backing="vg")])
    assert [i.dataset for i in plan(blocks).items] == ["vg", "md0"]


def test_a_backing_that_names_no_data_set_is_ignored() -> None:
    c = cluster(datasets=[shared("fs", backing="gone")])
    policy = plan(c)
    assert policy.item("fs").what.backing == "gone"
    assert len(includes(policy.item("fs"))) == 1


def test_policy_with_backing_round_trips_and_writes_backing_only_when_set() -> None:
    policy = plan(layered_cluster())
    text = dump_policy(policy)
    assert text.count("backing:") == 2
    assert "      backing: fs_pg\n    priority: high" in text
    assert parse_policy(text, "p.yaml") == policy
    assert "backing" not in dump_policy(plan(web_cluster()))


def test_explain_shows_what_an_item_lies_on() -> None:
    explanation = explain(plan(layered_cluster()))
    titles = {e.key: e.title for e in explanation.items}
    assert titles["c1/pg"] == "postgresql pg (resource pg; HA, replicated; lies on fs_pg)"
    assert (
        titles["c1/fs_pg"] == "filesystem fs_pg (resource fs_pg; HA, replicated; lies on drbd_r0)"
    )
    (excluded,) = explanation.excluded
    assert (excluded.value, excluded.because) == ("c1/drbd_r0", COVERED)


def test_diff_reports_a_changed_backing() -> None:
    old = plan(layered_cluster())
    pg = old.item("pg")
    moved = replace(pg, what=replace(pg.what, backing=None))
    new = replace(old, items=tuple(moved if i is pg else i for i in old.items))
    changes = diff_policies(old, new)
    assert [(c.key, c.field, c.old, c.new) for c in changes] == [
        ("c1/pg", "what.backing", "fs_pg", None)
    ]


def test_fingerprint_counts_backing_only_when_set() -> None:
    base = web_cluster()
    # pinned before backing existed: topologies without layering keep their fingerprint
    assert topology_fingerprint(topology(base)) == (
        "sha256:52851ee579d21cd8f03f89e7cecf148753a05eee56c691275e52f0a86f5753c4"
    )
    datasets = tuple(
        replace(d, backing="fs_data") if d.id == "pg_data" else d for d in base.datasets
    )
    layered = replace(base, datasets=datasets)
    assert topology_fingerprint(topology(layered)) != topology_fingerprint(topology(base))


def test_topology_json_keeps_backing_after_why_and_reads_old_json() -> None:
    c = layered_cluster()
    data = topology_to_json(topology(c))
    pg = data["clusters"][0]["datasets"][2]
    assert list(pg)[-2:] == ["why", "backing"]
    assert pg["backing"] == "fs_pg"
    assert topology_from_json(data) == topology(c)
    for dataset in data["clusters"][0]["datasets"]:
        del dataset["backing"]
    old = topology_from_json(data)
    assert all(d.backing is None for d in old.clusters[0].datasets)


def test_what_defaults_to_no_backing() -> None:
    assert What("filesystem", "fs", True, Replication.SHARED).backing is None
