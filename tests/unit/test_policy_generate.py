"""Generation rules: what is protected, how, from which node, in which group, and why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from haprotect.errors import InputError, PolicyError
from haprotect.model.policy import (
    Decision,
    Excluded,
    Fallback,
    Item,
    Policy,
    Priority,
    ReadRole,
    Retention,
)
from haprotect.model.topology import Cluster, Node, Topology
from haprotect.policy import default_rules, generate, parse_rules, topology_fingerprint
from haprotect.policy.decide import decide
from haprotect.policy.generate import unused_dataset_rules
from haprotect.redact import redact_text
from haprotect.testing.builders import (
    app,
    cluster,
    local,
    replicated,
    shared,
    tier,
    topology,
    web_cluster,
)

NOW = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def plan(topo: Topology, rules_text: str | None = None) -> Policy:
    rules = parse_rules(rules_text, "rules.yaml") if rules_text is not None else default_rules()
    return generate(topo, rules, source="pacemaker+file:///cib.xml", now=NOW)


def reasons(item: Item, decision: Decision) -> list[str]:
    return [r.because for r in item.reasons if r.decision is decision]


def test_ha_data_is_protected_tighter_than_non_ha_data() -> None:
    policy = plan(topology(web_cluster()), "include_non_ha: true\n")
    ha, non_ha = policy.item("fs_data"), policy.item("scratch")
    assert (ha.priority, non_ha.priority) == (Priority.HIGH, Priority.LOW)
    assert (ha.schedule, non_ha.schedule) == ("0 * * * *", "30 2 * * *")
    assert ha.copies > non_ha.copies
    for field in Retention.FIELDS:
        assert getattr(ha.retention, field) >= getattr(non_ha.retention, field)
    assert ha.retention != non_ha.retention


def test_non_ha_data_is_excluded_by_default_with_its_reason() -> None:
    policy = plan(topology(web_cluster()))
    assert [i.dataset for i in policy.items] == ["fs_data", "pg_data"]
    (excluded,) = policy.excluded
    assert excluded.dataset == "scratch"
    assert excluded.source == "dataset scratch"
    assert "is not HA" in excluded.because
    assert "directory /scratch is on no replicated or shared device" in excluded.because
    assert "rule include_non_ha is false (default)" in excluded.because


def test_priority_reason_names_the_dataset_and_why_it_is_ha() -> None:
    item = plan(topology(web_cluster())).item("fs_data")
    assert reasons(item, Decision.PRIORITY) == [
        "dataset fs_data is HA (Filesystem fs_data is mounted from DRBD r0, a promotable "
        "clone); rule ha.priority (default)"
    ]


def test_replicated_data_is_read_from_an_online_standby() -> None:
    item = plan(topology(web_cluster())).item("fs_data")
    assert item.read_from.role is ReadRole.STANDBY
    assert item.read_from.nodes == ("node2",)
    assert item.read_from.max_lag_seconds == 300
    assert item.read_from.fallback is Fallback.PRIMARY
    (why,) = reasons(item, Decision.READ_FROM)
    assert "node1 is primary, standby node2" in why


def test_offline_standbys_are_not_candidates_but_the_standby_rule_stays() -> None:
    c = cluster(
        datasets=[replicated("db", "node1", ("node2", "node3"))],
        nodes=[Node("node1", True), Node("node2", False), Node("node3", True)],
    )
    item = plan(topology(c)).item("db")
    assert item.read_from.role is ReadRole.STANDBY
    assert item.read_from.nodes == ("node3",)
    assert "(node2 offline)" in reasons(item, Decision.READ_FROM)[0]


def test_no_online_standby_says_so_and_keeps_the_fallback() -> None:
    c = cluster(datasets=[replicated("db")], nodes=[Node("node1", True), Node("node2", False)])
    item = plan(topology(c)).item("db")
    assert item.read_from.nodes == ()
    assert item.read_from.fallback is Fallback.PRIMARY
    assert "no standby is online now" in reasons(item, Decision.READ_FROM)[0]


def test_rules_can_read_replicated_data_from_the_primary() -> None:
    item = plan(topology(web_cluster()), "replicated: {read_from: primary}\n").item("fs_data")
    assert item.read_from.role is ReadRole.PRIMARY
    assert item.read_from.nodes == ("node1",)
    assert item.read_from.max_lag_seconds is None and item.read_from.fallback is None
    assert (
        "rule replicated.read_from is primary (from rules.yaml)"
        in reasons(item, Decision.READ_FROM)[0]
    )


def test_lag_limit_and_fallback_come_from_the_rules() -> None:
    text = "replicated: {max_lag_seconds: 30, fallback: wait}\n"
    item = plan(topology(web_cluster()), text).item("fs_data")
    assert (item.read_from.max_lag_seconds, item.read_from.fallback) == (30, Fallback.WAIT)


def test_shared_storage_is_read_on_the_node_that_has_it() -> None:
    item = plan(topology(web_cluster())).item("pg_data")
    assert item.read_from.role is ReadRole.ACTIVE
    assert item.read_from.nodes == ("node1",)
    assert item.read_from.max_lag_seconds is None
    assert "now node1" in reasons(item, Decision.READ_FROM)[0]


def test_shared_storage_not_mounted_anywhere_has_no_candidate_node() -> None:
    item = plan(topology(cluster(datasets=[shared("fs", primary=None)]))).item("fs")
    assert item.read_from.nodes == ()
    assert "no node has it now" in reasons(item, Decision.READ_FROM)[0]


def test_local_data_when_included_is_read_on_its_node() -> None:
    item = plan(topology(web_cluster()), "include_non_ha: true\n").item("scratch")
    assert item.read_from.role is ReadRole.LOCAL
    assert item.read_from.nodes == ("node1",)
    assert "rule include_non_ha is true (from rules.yaml)" in reasons(item, Decision.INCLUDE)[0]


def test_application_tiers_form_one_consistency_group() -> None:
    policy = plan(topology(web_cluster()))
    (group,) = policy.groups
    assert group.name == "grp_web"
    assert [t.name for t in group.tiers] == ["storage", "database", "frontend"]
    assert group.restore_order == ("storage", "database", "frontend")
    assert group.quiesce_order == ("frontend", "database", "storage")
    assert [t.datasets for t in group.tiers] == [("fs_data",), ("pg_data",), ()]
    assert {r.decision for r in group.reasons} == {
        Decision.GROUP,
        Decision.QUIESCE_ORDER,
        Decision.QUIESCE,
        Decision.RESTORE_ORDER,
    }
    assert [[q.kind for q in t.quiesce] for t in group.tiers] == [[], ["postgresql"], []]
    (why,) = [r for r in group.reasons if r.decision is Decision.QUIESCE]
    assert "postgresql data set pg_data" in why.because
    assert why.source == "dataset pg_data"
    item = policy.item("fs_data")
    assert reasons(item, Decision.GROUP) == [
        "in consistency group app 'grp_web' with tiers storage, database, frontend; "
        "this is tier storage"
    ]


def test_group_orders_follow_depends_on_when_tiers_are_listed_out_of_order() -> None:
    web = replace(tier("web", ["www"]), depends_on=("db",))
    db = replace(tier("db", ["pg"]), depends_on=("disk",))
    disk = tier("disk", ["vol"])
    application = app("shop", web, db, disk)
    c = cluster(
        datasets=[shared("www"), replicated("pg"), shared("vol")], applications=[application]
    )
    (group,) = plan(topology(c)).groups
    assert group.restore_order == ("disk", "db", "web")
    assert group.quiesce_order == ("web", "db", "disk")


def test_group_lists_only_protected_datasets_and_needs_one() -> None:
    only_local = cluster(
        datasets=[local("tmp")], applications=[app("batch", tier("work", ["tmp"]))]
    )
    assert plan(topology(only_local)).groups == ()
    mixed = cluster(
        datasets=[shared("data"), local("tmp")],
        applications=[app("svc", tier("store", ["data", "tmp"]))],
    )
    (group,) = plan(topology(mixed)).groups
    assert group.tiers[0].datasets == ("data",)


def test_dataset_without_application_has_no_group_reason() -> None:
    item = plan(topology(cluster(datasets=[shared("lonely")]))).item("lonely")
    assert reasons(item, Decision.GROUP) == []


def test_rules_file_overrides_class_rules_and_says_so() -> None:
    text = 'ha:\n  schedule: "*/15 * * * *"\n  copies: 3\n  retention: {keep_daily: 30}\n'
    item = plan(topology(web_cluster()), text).item("fs_data")
    assert item.schedule == "*/15 * * * *"
    assert item.copies == 3
    assert item.retention == Retention(24, 30, 8, 12, 1)
    assert reasons(item, Decision.SCHEDULE) == ["HA data; rule ha.schedule (from rules.yaml)"]
    assert reasons(item, Decision.PRIORITY)[0].endswith("rule ha.priority (default)")


def test_per_dataset_rules_override_the_class_and_can_exclude_ha_data() -> None:
    text = (
        "datasets:\n"
        "  fs_data: {priority: critical, schedule: '*/5 * * * *', retention: {keep_yearly: 3}}\n"
        "  c1/pg_data: {include: false}\n"
        "  scratch: {include: true, where: 's3://bucket/scratch'}\n"
    )
    policy = plan(topology(web_cluster()), text)
    fs = policy.item("fs_data")
    assert (fs.priority, fs.schedule, fs.retention.keep_yearly) == (
        Priority.CRITICAL,
        "*/5 * * * *",
        3,
    )
    assert reasons(fs, Decision.PRIORITY) == ["rule datasets.fs_data.priority (from rules.yaml)"]
    (excluded,) = policy.excluded
    assert excluded.dataset == "pg_data"
    assert "rule datasets.c1/pg_data.include is false (from rules.yaml)" in excluded.because
    scratch = policy.item("scratch")
    assert scratch.where == "s3://bucket/scratch"
    assert scratch.priority is Priority.LOW


def test_per_dataset_retention_that_keeps_nothing_is_an_error() -> None:
    text = "datasets: {fs_data: {retention: {keep_hourly: 0, keep_daily: 0, keep_weekly: 0, "
    text += "keep_monthly: 0, keep_yearly: 0}}}\n"
    with pytest.raises(PolicyError) as err:
        plan(topology(web_cluster()), text)
    assert str(err.value) == (
        "rules.yaml: datasets.fs_data.retention: dataset fs_data would keep no snapshots"
    )


def test_class_repository_overrides_the_default_repository() -> None:
    text = "where: /srv/backup\nha: {where: 's3://fast/ha'}\ninclude_non_ha: true\n"
    policy = plan(topology(web_cluster()), text)
    assert policy.repository == "/srv/backup"
    assert policy.item("fs_data").where == "s3://fast/ha"
    assert policy.item("scratch").where == "/srv/backup"
    assert reasons(policy.item("fs_data"), Decision.WHERE) == [
        "HA data; rule ha.where (from rules.yaml)"
    ]


def test_every_reason_names_an_object_of_the_cluster_or_a_preset() -> None:
    c = web_cluster()
    policy = plan(topology(c), "presets: [hipaa]\ninclude_non_ha: true\n")
    known = {f"dataset {d.id}" for d in c.datasets} | {
        f"application {a.name}" for a in c.applications
    }
    known.add("preset hipaa")
    all_reasons = [r for i in policy.items for r in i.reasons]
    all_reasons += [r for g in policy.groups for r in g.reasons]
    assert all_reasons
    assert {r.source for r in all_reasons} <= known
    for item in policy.items:
        decided = {r.decision for r in item.reasons}
        assert {
            Decision.INCLUDE,
            Decision.PRIORITY,
            Decision.SCHEDULE,
            Decision.WHERE,
            Decision.RETENTION,
            Decision.COPIES,
            Decision.READ_FROM,
        } <= decided


def test_metadata_records_source_clusters_time_fingerprint_and_rules() -> None:
    topo = topology(web_cluster("alpha"), cluster("beta", datasets=[shared("x")]))
    policy = generate(
        topo,
        parse_rules("presets: [sox]\n", "r.yaml"),
        source="https://admin:hunter2@cluster.example/api",
        now=NOW,
    )
    m = policy.metadata
    assert m.clusters == ("alpha", "beta")
    assert m.name == "alpha+beta"
    assert m.generated_at == datetime(2025, 3, 1, 12, 30, 15, tzinfo=UTC)
    assert m.topology_fingerprint == topology_fingerprint(topo)
    assert (m.rules.file, m.rules.presets) == ("r.yaml", ("sox",))
    assert "hunter2" not in m.source and m.source.startswith("https://admin:")
    assert {i.cluster for i in policy.items} == {"alpha", "beta"}


def test_secret_location_parameters_never_reach_the_policy() -> None:
    item = plan(topology(web_cluster())).item("pg_data")
    assert item.what.location["pgpassword"] == "<redacted>"
    assert item.what.location["pgdata"] == "/srv/pg"


def test_redact_text_keeps_urls_without_password() -> None:
    assert redact_text("pacemaker+file:///x.xml") == "pacemaker+file:///x.xml"
    assert redact_text("https://u:p@h:8008/") == "https://u:<redacted>@h:8008/"


def test_fingerprint_ignores_placement_but_not_definition() -> None:
    base = web_cluster()
    failed_over = replace(
        base,
        datasets=tuple(
            replace(d, primary="node2", standbys=("node1",), why=("moved",)) for d in base.datasets
        ),
        nodes=(Node("node1", False), Node("node2", True)),
    )
    assert topology_fingerprint(topology(base)) == topology_fingerprint(topology(failed_over))
    changed = replace(
        base,
        datasets=(*base.datasets, shared("new_fs")),
    )
    assert topology_fingerprint(topology(base)) != topology_fingerprint(topology(changed))
    moved = replace(
        base,
        datasets=tuple(
            replace(d, location={**d.location, "directory": "/elsewhere"}) for d in base.datasets
        ),
    )
    assert topology_fingerprint(topology(base)) != topology_fingerprint(topology(moved))


def test_an_empty_topology_is_an_error() -> None:
    with pytest.raises(InputError, match="no cluster found"):
        plan(Topology(()))


def test_unused_dataset_rules_are_reported() -> None:
    rules = parse_rules("datasets: {fs_data: {copies: 3}, fs_dta: {copies: 3}}\n", "r.yaml")
    assert unused_dataset_rules(topology(web_cluster()), rules) == ["fs_dta"]


def test_decide_returns_excluded_for_non_ha_data() -> None:
    c: Cluster = web_cluster()
    outcome = decide(c, c.dataset("scratch"), default_rules())
    assert isinstance(outcome, Excluded)
    assert outcome.kind == "filesystem"
