"""Jobs from a policy: one per group, one per ungrouped item, keyed by what they protect."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from haprotect.model.policy import Policy, Priority
from haprotect.policy import default_rules, generate, parse_rules
from haprotect.service.jobs import build_jobs
from haprotect.testing.builders import local, replicated, shared, topology, web_cluster

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def policy_of(cluster: object, rules: str = "include_non_ha: true\n") -> Policy:
    return generate(
        topology(cluster),  # type: ignore[arg-type]
        parse_rules(rules, "rules.yaml") if rules else default_rules(),
        source="pacemaker+file:///cib.xml",
        now=NOW,
    )


def failed_over(name: str = "c1") -> object:
    """The web cluster after a failover: node2 is primary of everything."""
    base = web_cluster(name)
    moved = (
        replace(base.datasets[0], primary="node2", standbys=("node1",)),
        shared(
            "pg_data",
            "node2",
            kind="postgresql",
            resource="pg_db",
            location={"pgdata": "/srv/pg"},
        ),
        local("scratch", "node2", location={"directory": "/scratch"}),
    )
    return replace(base, datasets=moved)


def test_a_group_is_one_job_and_an_item_in_no_group_its_own() -> None:
    jobs = build_jobs(policy_of(web_cluster()))
    assert [(j.key, j.kind, j.datasets) for j in jobs] == [
        ("group:c1/grp_web", "group", ("fs_data", "pg_data")),
        ("item:c1/scratch", "item", ("scratch",)),
    ]
    group, item = jobs
    assert group.applications == ("grp_web",) and item.applications == ()
    assert (group.priority, item.priority) == (Priority.HIGH, Priority.LOW)
    assert group.timezone == "UTC" and group.repository == item.repository


def test_a_failover_changes_the_nodes_a_job_reads_from_but_not_its_key() -> None:
    before, after = build_jobs(policy_of(web_cluster())), build_jobs(policy_of(failed_over()))
    assert [j.key for j in before] == [j.key for j in after]
    assert [j.nodes for j in before] != [j.nodes for j in after]
    assert [replace(j, nodes=()) for j in before] == [replace(j, nodes=()) for j in after]


def test_a_group_whose_members_disagree_takes_the_most_frequent_schedule_and_says_so() -> None:
    policy = policy_of(web_cluster())
    items = tuple(
        replace(i, schedule="0 2 * * *", priority=Priority.CRITICAL, where="s3://b/p")
        if i.dataset == "pg_data"
        else replace(i, schedule="*/20 * * * *")
        if i.dataset == "fs_data"
        else i
        for i in policy.items
    )
    group = build_jobs(replace(policy, items=items))[0]
    assert group.schedule == "*/20 * * * *"
    assert group.priority is Priority.CRITICAL
    assert group.repository == policy.repository  # a tie: the policy's repository
    assert any("the most frequent, */20 * * * *" in r for r in group.reasons)
    assert any("fs_data: */20 * * * *, pg_data: 0 2 * * *" in r for r in group.reasons)
    assert any("the highest, critical" in r for r in group.reasons)
    assert any("goes to " + policy.repository in r for r in group.reasons)


def test_a_group_whose_members_agree_has_no_reasons_to_give() -> None:
    assert build_jobs(policy_of(web_cluster()))[0].reasons == ()


def test_schedules_are_read_in_the_time_zone_given() -> None:
    cluster = web_cluster()
    extra = replace(cluster, datasets=(*cluster.datasets, replicated("fs_more")))
    jobs = build_jobs(policy_of(extra), timezone="Europe/Paris")
    assert {j.timezone for j in jobs} == {"Europe/Paris"}
    assert "item:c1/fs_more" in [j.key for j in jobs]
