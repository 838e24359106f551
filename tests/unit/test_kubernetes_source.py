"""The Kubernetes source on recorded objects (tests/fixtures/kubernetes/shop.json).

The fixture is what ``kubectl get nodes,pv,storageclasses,pvc,pods,svc,sts,
deploy,pdb,secrets,configmaps,clusters.postgresql.cnpg.io,postgresqls,
postgresclusters -A -o json`` prints for a small cluster: a CloudNativePG
Cluster (pg-2 primary after a failover), a Zalando postgresql, a Crunchy
PostgresCluster, a Redis StatefulSet with role labels, a Deployment with a
ReadWriteMany claim, a StatefulSet on a local volume, Services,
PodDisruptionBudgets, a Secret and a ConfigMap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import FIXTURES, ROOT
from tests.golden_files import check_golden, check_golden_text

from haprotect.errors import ExitCode
from haprotect.model.topology import Cluster, Manager, Node, Replication, Role
from haprotect.model.topology_json import topology_to_json
from haprotect.policy.generate import generate
from haprotect.policy.io import dump_policy, parse_policy
from haprotect.policy.rules_file import load_rules
from haprotect.sources import discover, source_for
from haprotect.sources.kubernetes.objects import read_objects
from haprotect.sources.kubernetes.source import KubernetesSource, build_cluster

DUMP = FIXTURES / "kubernetes" / "shop.json"
URL = f"kubernetes+file://{DUMP}"
HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
NOW = datetime(2026, 1, 1, tzinfo=UTC)

#: values inside the Secret and inside the pods' environment that must never come out
SECRETS = (
    "czNjcjN0LUNOUEctcGFzc3dvcmQ=",
    "s3cr3t-CNPG-password",
    "Sup3r-S3cret-DB",
    "r3dis-Secret-42",
    "tok-9f8e7d6c5b4a",
    "cG9zdGdyZXNxbDovL2FwcDpzM2NyM3Qt",
)


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    topology = discover(URL)
    assert len(topology.clusters) == 1
    return topology.clusters[0]


def test_the_url_picks_the_kubernetes_source() -> None:
    assert isinstance(source_for(URL), KubernetesSource)
    assert isinstance(source_for("kubernetes://prod"), KubernetesSource)
    assert isinstance(source_for("kubernetes:///etc/kube/config"), KubernetesSource)
    assert not KubernetesSource().applies_to(str(DUMP))


def test_nodes_are_the_kubernetes_nodes_online_when_ready(cluster: Cluster) -> None:
    assert cluster.manager is Manager.KUBERNETES
    assert cluster.name == "shop"
    assert cluster.nodes == (
        Node("node-a", True),
        Node("node-b", True),
        Node("node-c", True),
        Node("node-d", False),
    )


def test_cloudnativepg_claims_are_one_replicated_data_set_primary_from_its_status(
    cluster: Cluster,
) -> None:
    pg = cluster.dataset("shop/cnpg/pg")
    assert (pg.kind, pg.resource, pg.ha) == ("postgresql", "shop/cnpg/pg", True)
    assert pg.replication is Replication.REPLICATED
    # pg-2 on node-b is primary by status.currentPrimary after a failover from pg-1
    assert pg.primary == "node-b"
    assert pg.standbys == ("node-a", "node-c")
    assert pg.location["claims"] == "pg-2,pg-1,pg-3"
    assert pg.location["wal-claims"] == "pg-1-wal,pg-2-wal,pg-3-wal"
    assert pg.location["primary-pod"] == "pg-2"
    assert pg.location["operator"] == "cloudnative-pg"
    assert any("status.currentPrimary" in why for why in pg.why)
    assert any("PodDisruptionBudget pg-primary" in why for why in pg.why)
    resource = next(r for r in cluster.resources if r.id == "shop/cnpg/pg")
    assert resource.placement == {
        "node-a": Role.UNPROMOTED,
        "node-b": Role.PROMOTED,
        "node-c": Role.UNPROMOTED,
    }


def test_cnpg_status_wins_over_the_pods_role_labels() -> None:
    items = json.loads(DUMP.read_text())["items"]
    for item in items:
        if item["kind"] == "Cluster":
            item["status"]["currentPrimary"] = "pg-3"
            item["status"]["targetPrimary"] = "pg-1"
    cluster = build_cluster(read_objects(items, "test"), "shop")
    pg = cluster.dataset("shop/cnpg/pg")
    assert (pg.primary, pg.standbys) == ("node-c", ("node-a", "node-b"))
    assert any("switchover to pg-1" in why for why in pg.why)


def test_zalando_and_crunchy_clusters_take_primary_and_replicas_from_pod_labels(
    cluster: Cluster,
) -> None:
    orders = cluster.dataset("orders/postgresql/acid-orders")
    assert (orders.kind, orders.replication) == ("postgresql", Replication.REPLICATED)
    assert (orders.primary, orders.standbys) == ("node-a", ("node-b",))
    assert orders.location["claims"] == "pgdata-acid-orders-0,pgdata-acid-orders-1"
    assert orders.location["operator"] == "zalando"
    hippo = cluster.dataset("pgo/postgrescluster/hippo")
    assert (hippo.primary, hippo.standbys) == ("node-b", ("node-c",))
    assert hippo.location["claims"] == "hippo-instance1-8zpd-pgdata,hippo-instance1-q4tc-pgdata"
    assert hippo.location["pgdata"] == "/pgdata/pg16"
    # the operators' StatefulSets are their children, not data sets of their own
    parents = {r.id: r.parent for r in cluster.resources}
    assert parents["orders/statefulset/acid-orders"] == "orders/postgresql/acid-orders"
    assert parents["pgo/statefulset/hippo-instance1-8zpd"] == "pgo/postgrescluster/hippo"
    ids = {d.id for d in cluster.datasets}
    assert not any(i.startswith(("orders/statefulset", "pgo/statefulset", "pgo/pvc")) for i in ids)


def test_a_statefulset_with_role_labels_yields_its_claims_as_one_replicated_data_set(
    cluster: Cluster,
) -> None:
    redis = cluster.dataset("shop/statefulset/redis/data")
    assert (redis.kind, redis.ha, redis.replication) == ("pvc", True, Replication.REPLICATED)
    assert (redis.primary, redis.standbys) == ("node-a", ("node-c",))
    assert redis.location["claims"] == "data-redis-0,data-redis-1"
    assert redis.location["template"] == "data"


def test_a_statefulset_without_role_labels_has_a_data_set_per_claim_local_on_a_local_volume(
    cluster: Cluster,
) -> None:
    tsdb = cluster.dataset("monitoring/pvc/tsdb-prometheus-0")
    assert (tsdb.ha, tsdb.replication, tsdb.primary) == (False, Replication.LOCAL, "node-c")
    assert "node-c only" in tsdb.why[0]


def test_a_read_write_many_claim_of_a_deployment_is_shared(cluster: Cluster) -> None:
    uploads = cluster.dataset("shop/pvc/api-uploads")
    assert (uploads.ha, uploads.replication) == (True, Replication.SHARED)
    assert uploads.resource == "shop/deployment/api"
    assert uploads.location["access-modes"] == "ReadWriteMany"
    assert any("PodDisruptionBudget api" in why for why in uploads.why)


def test_a_network_volume_of_one_pod_fails_over_within_its_zone() -> None:
    items = json.loads(DUMP.read_text())["items"]
    # one Zalando instance: its claim is the data, attached where the pod runs
    kept = [
        i
        for i in items
        if not (
            i["metadata"].get("name", "").endswith("acid-orders-1")
            or i["metadata"].get("name") == "acid-orders-repl"
        )
    ]
    for item in kept:
        if item["kind"] == "postgresql":
            item["spec"]["numberOfInstances"] = 1
    orders = build_cluster(read_objects(kept, "test"), "shop").dataset(
        "orders/postgresql/acid-orders"
    )
    assert (orders.replication, orders.primary) == (Replication.SHARED, "node-a")
    # the volume's node affinity is zone-1: node-b, not node-c (zone-2)
    assert orders.standbys == ("node-b",)


def test_applications_from_part_of_and_tiers_from_component_and_dependencies(
    cluster: Cluster,
) -> None:
    apps = {a.name: a for a in cluster.applications}
    assert set(apps) == {
        "shop",
        "orders",
        "pgo/postgrescluster/hippo",
        "monitoring/statefulset/prometheus",
    }
    tiers = {t.name: t for t in apps["shop"].tiers}
    assert list(tiers) == ["database", "application", "frontend"]
    assert set(tiers["database"].datasets) == {"shop/cnpg/pg", "shop/statefulset/redis/data"}
    assert "shop/service/pg-rw" in tiers["database"].resources
    assert tiers["application"].resources == ("shop/deployment/api", "shop/service/api")
    assert tiers["application"].depends_on == ("database",)
    assert tiers["frontend"].depends_on == ("application",)
    deps = {(d.source, d.target, d.kind) for d in cluster.dependencies}
    assert ("shop/deployment/api", "shop/service/pg-rw", "names") in deps
    assert ("shop/service/pg-rw", "shop/cnpg/pg", "selects") in deps
    # Zalando's selector-less primary Service is pointed at the master by the operator
    assert ("orders/service/acid-orders", "orders/postgresql/acid-orders", "selects") in deps


def test_secrets_and_environment_values_never_reach_the_topology(cluster: Cluster) -> None:
    text = json.dumps(topology_to_json(discover(URL)))
    for secret in SECRETS:
        assert secret not in text
    assert not any("secret" in r.agent.lower() for r in cluster.resources)


def test_concatenated_documents_and_single_objects_read_as_one_list(tmp_path: Path) -> None:
    items = json.loads(DUMP.read_text())["items"]
    half = len(items) // 2
    path = tmp_path / "shop.json"
    path.write_text(
        json.dumps({"apiVersion": "v1", "kind": "List", "items": items[:half]}, indent=2)
        + "\n"
        + "\n".join(json.dumps(item) for item in items[half:])
    )
    assert discover(f"kubernetes+file://{path}") == discover(URL)


def test_the_cli_discovers_and_plans_the_dump(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "HAPROTECT_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [HAPROTECT, "discover", "--json", URL],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == ExitCode.SUCCESS, done.stderr
    shown = json.loads(done.stdout)["clusters"][0]
    assert shown["manager"] == "kubernetes"
    pg = next(d for d in shown["datasets"] if d["id"] == "shop/cnpg/pg")
    assert (pg["primary"], pg["standbys"]) == ("node-b", ["node-a", "node-c"])
    policy = tmp_path / "policy.yaml"
    done = subprocess.run(
        [HAPROTECT, "plan", URL, "-o", str(policy)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == ExitCode.SUCCESS, done.stderr
    text = policy.read_text()
    assert "dataset: shop/cnpg/pg" in text
    assert "nodes: [node-a, node-c]" in text
    for secret in SECRETS:
        assert secret not in text + done.stdout + done.stderr


def test_topology_and_policy_match_their_golden_files() -> None:
    topology = discover(URL)
    check_golden("kubernetes-shop.topology.json", topology_to_json(topology))
    source = f"kubernetes+file://{DUMP.relative_to(ROOT)}"
    policy = generate(topology, load_rules(None), source=source, now=NOW)
    text = dump_policy(policy)
    check_golden_text("kubernetes-shop.policy.yaml", text)
    assert parse_policy(text, "kubernetes-shop.policy.yaml") == policy


def test_statefulset_claims_without_role_labels_or_pods_are_data_sets_of_their_own() -> None:
    items = json.loads(DUMP.read_text())["items"]
    kept = [
        i for i in items if not (i["kind"] == "Pod" and i["metadata"]["name"] == "prometheus-0")
    ]
    for item in kept:
        if item["kind"] == "Pod" and item["metadata"]["name"].startswith("redis-"):
            del item["metadata"]["labels"]["role"]
    cluster = build_cluster(read_objects(kept, "test"), "shop")
    ids = {d.id for d in cluster.datasets}
    assert "shop/statefulset/redis/data" not in ids
    first = cluster.dataset("shop/pvc/data-redis-0")
    assert (first.replication, first.primary) == (Replication.SHARED, "node-a")
    assert first.standbys == ("node-b", "node-c")
    # no pod runs prometheus-0 now: its claim is still found, on its local volume's node
    tsdb = cluster.dataset("monitoring/pvc/tsdb-prometheus-0")
    assert (tsdb.replication, tsdb.primary) == (Replication.LOCAL, "node-c")
