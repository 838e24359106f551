"""What runs: operators' PostgreSQL clusters, StatefulSets, Deployments and Services.

Each becomes one resource of the topology (a *unit*), with the pods it runs
and their roles. A pod's role comes from the labels its operator or chart
sets (``cnpg.io/instanceRole``, ``spilo-role``,
``postgres-operator.crunchydata.com/role``, a plain ``role``): primary,
master or leader is promoted; replica, standby or secondary unpromoted; a
pod without such a label is started. CloudNativePG's ``status.currentPrimary``
names the primary pod and wins over the labels, which the operator sets
after the fact.

Pods go to an operator's cluster by the operator's labels, then to the
StatefulSet or Deployment whose selector picks them. A StatefulSet whose
pods are all an operator cluster's (Zalando's and Crunchy's make theirs) is
that cluster's child: its ``parent``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from haprotect.model.topology import Role
from haprotect.sources.kubernetes.objects import (
    CNPG,
    CRUNCHY,
    ZALANDO,
    Meta,
    Objects,
    PgCluster,
    PodInfo,
    ServiceInfo,
    Workload,
)

ROLE_LABELS = (
    "cnpg.io/instanceRole",
    "spilo-role",
    f"{CRUNCHY}/role",
    "role",
)
_PROMOTED = frozenset({"primary", "master", "leader"})
_UNPROMOTED = frozenset({"replica", "standby", "secondary", "slave", "follower", "standby_leader"})

#: operator group -> (short name used in ids, operator's name in locations)
OPERATORS = {
    CNPG: ("cnpg", "cloudnative-pg"),
    ZALANDO: ("postgresql", "zalando"),
    CRUNCHY: ("postgrescluster", "crunchy"),
}


@dataclass(slots=True)
class Unit:
    """One resource: an operator cluster, a workload or a Service, and its running pods."""

    id: str
    agent: str
    meta: Meta
    pods: list[PodInfo] = field(default_factory=list)
    parent: str | None = None
    workload: Workload | None = None
    cluster: PgCluster | None = None
    service: ServiceInfo | None = None

    @property
    def labels(self) -> dict[str, str]:
        """The object's labels, completed by its pod template's (charts label either)."""
        template = self.workload.template_labels if self.workload else {}
        return {**template, **self.meta.labels}

    def role_of(self, pod: PodInfo) -> Role:
        """CloudNativePG's status.currentPrimary when it names one, else the pod's labels."""
        primary = self.cluster.current_primary if self.cluster is not None else ""
        if primary:
            return Role.PROMOTED if pod.meta.name == primary else Role.UNPROMOTED
        return pod_role(pod)

    def running(self) -> list[PodInfo]:
        return [p for p in self.pods if p.phase == "Running" and p.node]

    def placement(self) -> dict[str, Role]:
        out: dict[str, Role] = {}
        rank = {Role.PROMOTED: 0, Role.UNPROMOTED: 1, Role.STARTED: 2}
        for pod in self.running():
            role = self.role_of(pod)
            if pod.node not in out or rank[role] < rank[out[pod.node]]:
                out[pod.node] = role
        return out


def pod_role(pod: PodInfo) -> Role:
    return _role_of_labels(pod.meta.labels)


def _role_of_labels(labels: dict[str, str]) -> Role:
    for label in ROLE_LABELS:
        value = labels.get(label, "").lower()
        if value in _PROMOTED:
            return Role.PROMOTED
        if value in _UNPROMOTED:
            return Role.UNPROMOTED
    return Role.STARTED


def unit_id(meta: Meta, short: str) -> str:
    return f"{meta.namespace}/{short}/{meta.name}"


def build_units(objects: Objects) -> list[Unit]:
    """Every unit, operator clusters first, each with the pods it runs."""
    taken: set[tuple[str, str]] = set()
    units: list[Unit] = []
    for cluster in objects.pg_clusters:
        short, _ = OPERATORS[cluster.meta.group]
        unit = Unit(
            unit_id(cluster.meta, short),
            f"{cluster.meta.group}/{cluster.meta.kind}",
            cluster.meta,
            cluster=cluster,
        )
        unit.pods = [p for p in objects.pods if _in_cluster(p, cluster)]
        taken |= {(p.meta.namespace, p.meta.name) for p in unit.pods}
        units.append(unit)
    operator_units = list(units)
    for workload in objects.workloads:
        unit = Unit(
            unit_id(workload.meta, workload.meta.kind.lower()),
            f"apps/{workload.meta.kind}",
            workload.meta,
            workload=workload,
        )
        unit.pods = [p for p in objects.pods if _of_workload(p, workload)]
        pod_keys = {(p.meta.namespace, p.meta.name) for p in unit.pods}
        owner = next(
            (
                u
                for u in operator_units
                if _owned_by(workload.meta, u.meta)
                or (pod_keys and pod_keys <= {(p.meta.namespace, p.meta.name) for p in u.pods})
            ),
            None,
        )
        if owner is not None:
            unit.parent = owner.id
        units.append(unit)
    for service in objects.services:
        unit = Unit(unit_id(service.meta, "service"), "core/Service", service.meta, service=service)
        if service.selector:
            unit.pods = [
                p
                for p in objects.pods
                if p.meta.namespace == service.meta.namespace
                and all(p.meta.labels.get(k) == v for k, v in service.selector.items())
            ]
        else:
            unit.pods = _operator_endpoints(service, operator_units)
        units.append(unit)
    return units


def _operator_endpoints(service: ServiceInfo, operator_units: list[Unit]) -> list[PodInfo]:
    """The pods behind a Service without a selector that an operator fills in itself.

    Zalando's primary Service and Crunchy's are such: the operator that owns
    the Service, or that its cluster label names, points it at the pods of
    the role its labels give (all of the cluster's pods if they give none).
    """
    meta = service.meta
    names = {meta.labels[k] for k in _CLUSTER_LABELS if k in meta.labels}
    owner = next(
        (
            u
            for u in operator_units
            if u.meta.namespace == meta.namespace
            and (_owned_by(meta, u.meta) or u.meta.name in names)
        ),
        None,
    )
    if owner is None:
        return []
    wanted = _role_of_labels(meta.labels)
    return [p for p in owner.pods if wanted is Role.STARTED or owner.role_of(p) is wanted]


_CLUSTER_LABELS = ("cluster-name", "cnpg.io/cluster", f"{CRUNCHY}/cluster")


def _owned_by(meta: Meta, owner: Meta) -> bool:
    return meta.namespace == owner.namespace and (owner.kind, owner.name) in meta.owners


def _in_cluster(pod: PodInfo, cluster: PgCluster) -> bool:
    meta = cluster.meta
    if pod.meta.namespace != meta.namespace:
        return False
    labels = pod.meta.labels
    if meta.group == CNPG:
        return (
            labels.get("cnpg.io/cluster") == meta.name
            and (labels.get("cnpg.io/podRole", "instance") == "instance")
            and "cnpg.io/jobRole" not in labels
        )
    if meta.group == ZALANDO:
        return labels.get("cluster-name") == meta.name and (
            labels.get("application", "spilo") == "spilo"
        )
    return labels.get(f"{CRUNCHY}/cluster") == meta.name and (
        labels.get(f"{CRUNCHY}/data") == "postgres"
    )


def _of_workload(pod: PodInfo, workload: Workload) -> bool:
    meta = workload.meta
    if pod.meta.namespace != meta.namespace:
        return False
    if ("StatefulSet", meta.name) in pod.meta.owners and meta.kind == "StatefulSet":
        return True
    return workload.selector.selects(pod.meta.labels)
