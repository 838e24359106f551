"""Plan building: node choice, fallbacks, locations, orders, with fake health checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from haprotect.errors import UsageError
from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.model.plan import LONE_TIER, Plan, PlanItem, SourceHealth
from haprotect.model.policy import Fallback, Policy
from haprotect.model.topology import Node, Topology
from haprotect.plan import build
from haprotect.plan.choose import settle
from haprotect.plan.graph import CycleError, dependents, quiesce_order, restore_order
from haprotect.policy import default_rules, generate
from haprotect.testing.builders import app, cluster, replicated, shared, tier, topology

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MOVERS = {"postgresql": "postgresql", "filesystem": "files"}


def shop(primary: str = "node1", standbys: tuple[str, ...] = ("node2",), **nodes: bool) -> Topology:
    """fs (shared), pg (replicated PostgreSQL), a lone replicated data set, and app shop."""
    names = ("node1", "node2", "node3")
    return topology(
        cluster(
            "c1",
            datasets=(
                shared("fs", primary, location={"directory": "/srv/fs"}),
                replicated(
                    "pg",
                    primary,
                    standbys,
                    kind="postgresql",
                    location={"pgdata": "/srv/pg", "pgport": "5432"},
                ),
                replicated("logs", primary, standbys, location={"directory": "/srv/logs"}),
            ),
            applications=(
                app(
                    "shop",
                    tier("storage", ["fs"]),
                    tier("database", ["pg"]),
                    tier("frontend", [], ["web"]),
                ),
            ),
            nodes=tuple(Node(n, nodes.get(n, True)) for n in names),
        )
    )


def policy_for(topo: Topology) -> Policy:
    return generate(topo, default_rules(), source="file:///c1.yaml", now=NOW)


class FakeProbe:
    """Health per node; records which nodes were checked."""

    def __init__(self, health: Mapping[str, SourceHealth] | None = None) -> None:
        self.health = dict(health or {})
        self.calls: list[tuple[str, str]] = []

    def __call__(self, item: PlanItem, node: str) -> SourceHealth:
        self.calls.append((item.dataset, node))
        return self.health.get(node, SourceHealth(node, True, "healthy", 0.0, 0))


def plan_of(
    topo: Topology,
    probe: FakeProbe | None = None,
    inventory: Inventory | None = None,
    policy: Policy | None = None,
    **kwargs: list[str],
) -> Plan:
    return build(
        policy or policy_for(topo),
        topo,
        inventory or Inventory(this_host="backup-host"),
        mover_for=MOVERS.get,
        probe=probe,
        now=NOW,
        **kwargs,
    )


def item(plan: Plan, dataset: str) -> PlanItem:
    for found in plan.items:
        if found.dataset == dataset:
            return found
    raise AssertionError(dataset)


def test_a_healthy_standby_is_read_with_the_inventory_location_of_that_node() -> None:
    inventory = Inventory(
        (NodeAccess("node2", "10.0.0.2", False, {"pg": {"pgport": "5433"}}),),
        this_host="backup-host",
        origin="inv.yaml",
    )
    pg = item(plan_of(shop(), FakeProbe(), inventory), "pg")
    assert pg.source.node == "node2"
    assert not pg.source.fallback_used
    assert pg.location == {"pgdata": "/srv/pg", "pgport": "5433"}
    assert pg.mover == "postgresql"
    assert not pg.problems
    because = {r.decision: r.because for r in pg.reasons}
    assert "read standby node2" in because["node"]
    assert because["location"] == "pgport for node2 from inv.yaml"


def test_a_standby_too_far_behind_falls_back_to_the_primary_and_says_why() -> None:
    probe = FakeProbe({"node2": SourceHealth("node2", True, "streaming", 900.0, 10_000)})
    pg = item(plan_of(shop(), probe), "pg")
    assert pg.source.node == "node1"
    assert pg.source.fallback_used
    text = "; ".join(pg.source.reasons)
    assert "node2 is 900.0s behind (limit 300s)" in text
    assert "fallback primary: read the primary node1" in text
    assert pg.location == {"pgdata": "/srv/pg", "pgport": "5432"}


def test_fallback_fail_leaves_the_item_without_a_node() -> None:
    topo = shop()
    policy = policy_for(topo)
    pg = policy.item("pg")
    failing = replace(pg, read_from=replace(pg.read_from, fallback=Fallback.FAIL))
    policy = replace(policy, items=tuple(failing if i is pg else i for i in policy.items))
    probe = FakeProbe({"node2": SourceHealth("node2", False, "not streaming (stopped)")})
    planned = item(plan_of(topo, probe, policy=policy), "pg")
    assert planned.source.node is None
    assert "fallback fail" in planned.source.reasons[-1]
    assert "node2 is not usable: not streaming (stopped)" in planned.source.reasons[-2]
    assert not planned.problems  # the run checks again before it gives up


def test_fallback_wait_keeps_the_standby_and_marks_the_wait() -> None:
    topo = shop()
    policy = policy_for(topo)
    pg = policy.item("pg")
    waiting = replace(pg, read_from=replace(pg.read_from, fallback=Fallback.WAIT))
    policy = replace(policy, items=tuple(waiting if i is pg else i for i in policy.items))
    probe = FakeProbe({"node2": SourceHealth("node2", True, "streaming", 400.0, 1)})
    planned = item(plan_of(topo, probe, policy=policy), "pg")
    assert planned.source.node == "node2"
    assert planned.source.wait
    assert "fallback wait" in planned.source.reasons[-1]


def test_an_offline_standby_is_not_checked_and_the_fallback_applies() -> None:
    probe = FakeProbe()
    pg = item(plan_of(shop(node2=False), probe), "pg")
    assert pg.source.node == "node1"
    assert ("pg", "node2") not in probe.calls
    assert "no standby online" in pg.source.reasons
    assert "offline: node2" in pg.source.reasons


def test_the_second_standby_is_used_when_the_first_is_behind() -> None:
    probe = FakeProbe({"node2": SourceHealth("node2", False, "cannot connect")})
    pg = item(plan_of(shop(standbys=("node2", "node3")), probe), "pg")
    assert pg.source.node == "node3"
    assert [c.node for c in pg.source.checks] == ["node2", "node3"]


def test_after_a_failover_the_same_policy_reads_the_new_standby() -> None:
    policy = policy_for(shop())
    after = shop(primary="node2", standbys=("node1",))
    pg = item(plan_of(after, FakeProbe(), policy=policy), "pg")
    assert pg.source.primary == "node2"
    assert pg.source.node == "node1"
    fs = item(plan_of(after, FakeProbe(), policy=policy), "fs")
    assert fs.source.node == "node2"


def test_shared_storage_is_read_where_it_is_mounted() -> None:
    fs = item(plan_of(shop(), FakeProbe()), "fs")
    assert fs.source.node == "node1"
    assert fs.mover == "files"
    assert fs.source.reasons[0] == "role active: the storage is on node1 now"


def test_a_fixed_node_that_fails_its_check_is_not_read() -> None:
    probe = FakeProbe({"node1": SourceHealth("node1", False, "files not on this machine")})
    fs = item(plan_of(shop(), probe), "fs")
    assert fs.source.node is None
    assert fs.source.reasons[-1] == "node1 cannot be read: files not on this machine"
    again = settle(fs.source, lambda node: SourceHealth(node, True, "back"), wait_seconds=0)
    assert again.node == "node1"  # checked again at run time


def test_groups_keep_their_orders_and_lone_items_get_a_set_of_their_own() -> None:
    plan = plan_of(shop(), FakeProbe())
    sets = {s.name: s for s in plan.sets}
    shop_set = sets["shop"]
    assert shop_set.application == "shop"
    assert shop_set.restore_order == ("storage", "database", "frontend")
    assert shop_set.quiesce_order == ("frontend", "database", "storage")
    assert [i.dataset for i in shop_set.in_quiesce_order()] == ["pg", "fs"]
    assert [i.dataset for i in shop_set.in_restore_order()] == ["fs", "pg"]
    assert shop_set.tier("database").depends_on == ("storage",)
    lone = sets["logs"]
    assert lone.application is None
    assert [t.name for t in lone.tiers] == [LONE_TIER]
    assert item(plan, "logs").tier == LONE_TIER


def test_a_kind_without_a_mover_is_planned_with_a_problem() -> None:
    topo = shop()
    plan = build(
        policy_for(topo),
        topo,
        Inventory(),
        mover_for=lambda kind: None if kind == "postgresql" else "files",
        now=NOW,
    )
    pg = item(plan, "pg")
    assert pg.mover is None
    assert pg.problems == ("no mover copies data of kind postgresql",)


def test_without_a_probe_the_first_online_standby_is_planned_unchecked() -> None:
    pg = item(plan_of(shop()), "pg")
    assert pg.source.node == "node2"
    assert pg.source.reasons[-1] == "read node2 (not checked yet)"


def test_filters_narrow_the_plan_and_unknown_names_are_refused() -> None:
    only_pg = plan_of(shop(), datasets=["pg"])
    assert [i.dataset for i in only_pg.items] == ["pg"]
    only_shop = plan_of(shop(), applications=["shop"])
    assert [s.name for s in only_shop.sets] == ["shop"]
    with pytest.raises(UsageError, match="no application nope"):
        plan_of(shop(), applications=["nope"])
    with pytest.raises(UsageError, match="no data set nope"):
        plan_of(shop(), datasets=["nope"])


def test_a_changed_cluster_definition_is_a_warning_and_a_vanished_data_set_a_problem() -> None:
    policy = policy_for(shop())
    base = shop()
    changed = replace(
        base.clusters[0], datasets=tuple(d for d in base.clusters[0].datasets if d.id != "pg")
    )
    plan = plan_of(Topology((changed,)), policy=policy)
    assert any("changed since the policy" in w for w in plan.warnings)
    pg = item(plan, "pg")
    assert pg.source.node is None
    assert "not in the cluster any more" in pg.problems[0]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_settle_waits_until_a_standby_is_within_the_limit() -> None:
    topo = shop()
    policy = policy_for(topo)
    pg = policy.item("pg")
    waiting = replace(pg, read_from=replace(pg.read_from, fallback=Fallback.WAIT))
    policy = replace(policy, items=tuple(waiting if i is pg else i for i in policy.items))
    planned = item(plan_of(topo, policy=policy), "pg")
    answers = iter([900.0, 900.0, 900.0, 2.0])

    def probe(node: str) -> SourceHealth:
        return SourceHealth(node, True, "streaming", next(answers), 1)

    clock = Clock()
    choice = settle(
        planned.source, probe, wait_seconds=60, interval=5, clock=clock.time, sleep=clock.sleep
    )
    assert choice.node == "node2"
    assert not choice.wait
    assert clock.now == 15
    assert choice.reasons[-1].startswith("waited for a standby")


def test_settle_gives_up_after_the_wait() -> None:
    topo = shop()
    policy = policy_for(topo)
    pg = policy.item("pg")
    waiting = replace(pg, read_from=replace(pg.read_from, fallback=Fallback.WAIT))
    policy = replace(policy, items=tuple(waiting if i is pg else i for i in policy.items))
    planned = item(plan_of(topo, policy=policy), "pg")
    clock = Clock()
    choice = settle(
        planned.source,
        lambda node: SourceHealth(node, False, "not streaming"),
        wait_seconds=10,
        interval=3,
        clock=clock.time,
        sleep=clock.sleep,
    )
    assert choice.node is None
    assert clock.now == pytest.approx(10)
    assert "waited 10s for a standby" in choice.reasons[-1]


def test_orders_follow_the_dependency_graph() -> None:
    edges = {
        "frontend": ("application",),
        "storage": (),
        "application": ("database", "storage"),
        "database": ("storage",),
    }
    assert restore_order(edges) == ("storage", "database", "application", "frontend")
    assert quiesce_order(edges) == ("frontend", "application", "database", "storage")
    assert dependents(["database"], edges) == {"application", "frontend"}
    assert dependents(["frontend"], edges) == set()
    with pytest.raises(CycleError, match="cycle"):
        restore_order({"a": ("b",), "b": ("a",)})
