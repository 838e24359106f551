"""Which data a Kubernetes cluster keeps, and how it keeps it available.

1. A PostgreSQL operator's cluster (CloudNativePG ``Cluster``, Zalando
   ``postgresql``, Crunchy ``PostgresCluster``) is one data set of kind
   ``postgresql``: each instance has its own data claim and the primary
   streams to the replicas, so it is *replicated*; the primary is the node
   of the primary pod, the standbys the nodes of the replicas. Its claims
   are named in its location, the primary's first.
2. A StatefulSet whose pods carry a role label (one primary, the others
   replicas: a chart's Redis, MySQL or PostgreSQL) makes one *replicated*
   data set of each of its volumeClaimTemplates, in the same way.
3. Every other claim a StatefulSet or Deployment mounts is a data set of
   its own, kind ``pvc``, decided by where its volume lives
   (:mod:`haprotect.sources.kubernetes.claims`).

A PodDisruptionBudget that covers the pods is named in the data set's
``why``: it is how the cluster keeps enough replicas up during upkeep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from haprotect.model.topology import DataSet, Replication, Role
from haprotect.redact import redact_value
from haprotect.sources.kubernetes.claims import Storage, claim_dataset
from haprotect.sources.kubernetes.objects import CNPG, CRUNCHY, ZALANDO, Budget, Claim, PodInfo
from haprotect.sources.kubernetes.units import OPERATORS, Unit, pod_role

#: where each operator's image keeps PGDATA inside the pod
_PGDATA = {
    CNPG: "/var/lib/postgresql/data/pgdata",
    ZALANDO: "/home/postgres/pgdata/pgroot/data",
}
_LABELS = {
    CNPG: "CloudNativePG Cluster",
    ZALANDO: "Zalando postgresql",
    CRUNCHY: "Crunchy PostgresCluster",
}


@dataclass(frozen=True, slots=True)
class Member:
    """One instance of a replicated data set: its claim, pod, node and role."""

    claim: str
    pod: str
    node: str | None
    role: Role


def infer_datasets(units: list[Unit], storage: Storage, budgets: list[Budget]) -> list[DataSet]:
    out: dict[str, DataSet] = {}
    covered: set[tuple[str, str]] = set()
    for unit in units:
        if unit.cluster is not None:
            dataset, claims = _operator_dataset(unit, storage)
            out[dataset.id] = _with_budgets(dataset, unit, budgets)
            covered |= {(unit.meta.namespace, c) for c in claims}
    for unit in units:
        workload = unit.workload
        if workload is None or unit.parent is not None:
            continue
        namespace = unit.meta.namespace
        claims = [*workload.claims]
        for template in workload.claim_templates:
            members = _template_members(unit, template, storage)
            if len(members) > 1 and any(m.role is Role.PROMOTED for m in members):
                dataset = _replicated_template(unit, template, members, storage)
                out[dataset.id] = _with_budgets(dataset, unit, budgets)
                covered |= {(namespace, m.claim) for m in members}
            claims += [m.claim for m in members]
        for pod in unit.pods:
            claims += pod.claims
        for name in dict.fromkeys(claims):
            key = (namespace, name)
            if key in covered:
                continue
            covered.add(key)
            dataset = claim_dataset(key, unit.id, unit.pods, storage)
            out[dataset.id] = _with_budgets(dataset, unit, budgets)
    return list(out.values())


def _operator_dataset(unit: Unit, storage: Storage) -> tuple[DataSet, list[str]]:
    cluster = unit.cluster
    assert cluster is not None
    meta = cluster.meta
    group = meta.group
    data, wal = _operator_claims(unit, storage)
    members: list[Member] = []
    seen_pods: set[str] = set()
    for claim, instance in data:
        pod = next((p for p in unit.pods if claim.meta.name in p.claims), None)
        pod = pod or next((p for p in unit.pods if p.meta.name == instance), None)
        members.append(_member(unit, claim.meta.name, instance, pod))
        if pod is not None:
            seen_pods.add(pod.meta.name)
    for pod in unit.pods:
        if pod.meta.name not in seen_pods:
            members.append(_member(unit, "", pod.meta.name, pod))
    members = _ordered(members)
    label = _LABELS[group]
    location = {
        "namespace": meta.namespace,
        "cluster": meta.name,
        "operator": OPERATORS[group][1],
        "claims": ",".join(m.claim for m in members if m.claim),
        "wal-claims": ",".join(wal),
        "primary-pod": next((m.pod for m in members if m.role is Role.PROMOTED), ""),
        "pgdata": _PGDATA.get(group) or (f"/pgdata/pg{cluster.version}" if cluster.version else ""),
    }
    location = {k: redact_value(k, v) for k, v in location.items() if v}
    instances = max(cluster.instances, len(members))
    why = [
        f"{label} {meta.namespace}/{meta.name}: {instances} instances, each on its own claim; "
        "the primary streams to the replicas"
    ]
    if group == CNPG and cluster.current_primary:
        why.append(f"primary {cluster.current_primary} from status.currentPrimary")
        if cluster.target_primary and cluster.target_primary != cluster.current_primary:
            why.append(f"a switchover to {cluster.target_primary} is under way")
    elif members:
        why.append("primary and replicas from the pods' role labels")
    if cluster.phase:
        why.append(f"status: {cluster.phase}")
    dataset = DataSet(
        unit.id, "postgresql", unit.id, location, ha=True, replication=Replication.REPLICATED
    )
    claims = [m.claim for m in members if m.claim] + wal
    if instances < 2 and len(data) == 1:
        single = claim_dataset((meta.namespace, data[0][0].meta.name), unit.id, unit.pods, storage)
        return replace(
            single,
            id=unit.id,
            kind="postgresql",
            location=location,
            why=(f"{label} {meta.namespace}/{meta.name} has one instance", *single.why),
        ), claims
    return _roles(dataset, members, why), claims


def _operator_claims(unit: Unit, storage: Storage) -> tuple[list[tuple[Claim, str]], list[str]]:
    """The operator cluster's data claims with their instance names, and its WAL claims."""
    meta = unit.meta
    claims = [c for (ns, _), c in storage.claims.items() if ns == meta.namespace]
    data: list[tuple[Claim, str]] = []
    wal: list[str] = []
    for claim in sorted(claims, key=lambda c: c.meta.name):
        labels = claim.meta.labels
        if meta.group == CNPG and labels.get("cnpg.io/cluster") == meta.name:
            role = labels.get("cnpg.io/pvcRole", "PG_DATA")
            if role == "PG_DATA":
                data.append((claim, labels.get("cnpg.io/instanceName", claim.meta.name)))
            elif role == "PG_WAL":
                wal.append(claim.meta.name)
        elif meta.group == ZALANDO and labels.get("cluster-name") == meta.name:
            data.append((claim, claim.meta.name.removeprefix("pgdata-")))
        elif (
            meta.group == CRUNCHY
            and labels.get(f"{CRUNCHY}/cluster") == meta.name
            and labels.get(f"{CRUNCHY}/data") == "postgres"
        ):
            if labels.get(f"{CRUNCHY}/role", "pgdata") == "pgwal":
                wal.append(claim.meta.name)
            else:
                data.append((claim, labels.get(f"{CRUNCHY}/instance", claim.meta.name)))
    return data, wal


def _member(unit: Unit, claim: str, instance: str, pod: PodInfo | None) -> Member:
    if pod is None:
        cluster = unit.cluster
        primary = cluster is not None and cluster.current_primary == instance
        return Member(claim, instance, None, Role.PROMOTED if primary else Role.UNPROMOTED)
    running = pod.phase == "Running" and bool(pod.node)
    return Member(claim, pod.meta.name, pod.node if running else None, unit.role_of(pod))


def _ordered(members: list[Member]) -> list[Member]:
    rank = {Role.PROMOTED: 0, Role.UNPROMOTED: 1, Role.STARTED: 2}
    return sorted(members, key=lambda m: (rank[m.role], m.pod))


_ORDINAL = re.compile(r"-(\d+)$")


def _template_members(unit: Unit, template: str, storage: Storage) -> list[Member]:
    """The claims a StatefulSet made from ``template`` (``TEMPLATE-STS-N``), with their pods."""
    prefix = f"{template}-{unit.meta.name}-"
    members: list[Member] = []
    for (namespace, name), _claim in storage.claims.items():
        if namespace != unit.meta.namespace or not name.startswith(prefix):
            continue
        ordinal = name.removeprefix(prefix)
        if not ordinal.isdigit():
            continue
        pod_name = f"{unit.meta.name}-{ordinal}"
        pod = next((p for p in unit.pods if p.meta.name == pod_name), None)
        if pod is None:
            members.append(Member(name, pod_name, None, Role.UNPROMOTED))
        else:
            running = pod.phase == "Running" and bool(pod.node)
            members.append(Member(name, pod_name, pod.node if running else None, pod_role(pod)))
    return _ordered(members)


def _replicated_template(
    unit: Unit, template: str, members: list[Member], storage: Storage
) -> DataSet:
    meta = unit.meta
    first = storage.claims[(meta.namespace, members[0].claim)]
    location = {
        "namespace": meta.namespace,
        "statefulset": meta.name,
        "template": template,
        "claims": ",".join(m.claim for m in members),
        "storage-class": first.storage_class,
        "primary-pod": next((m.pod for m in members if m.role is Role.PROMOTED), ""),
    }
    location = {k: redact_value(k, v) for k, v in location.items() if v}
    why = [
        f"StatefulSet {meta.namespace}/{meta.name}: {len(members)} pods, each with its own "
        f"claim from template {template}; the pod labelled primary replicates to the others"
    ]
    dataset = DataSet(
        f"{unit.id}/{template}",
        "pvc",
        unit.id,
        location,
        ha=True,
        replication=Replication.REPLICATED,
    )
    return _roles(dataset, members, why)


def _roles(dataset: DataSet, members: list[Member], why: list[str]) -> DataSet:
    """Primary and standbys (nodes) of a replicated data set from its members."""
    primaries = [m for m in members if m.role is Role.PROMOTED]
    if not primaries:
        why.append("no instance is primary now")
    elif len(primaries) > 1:
        why.append(
            f"{len(primaries)} pods are labelled primary ({', '.join(m.pod for m in primaries)}); "
            f"{primaries[0].pod} is taken as the primary"
        )
    lead = primaries[0] if primaries else None
    if lead is not None and lead.node is None:
        why.append(f"primary pod {lead.pod} runs on no known node now")
    primary = lead.node if lead is not None else None
    standbys = [m.node for m in members if m is not lead and m.node and m.node != primary]
    shared = [m.pod for m in members if m is not lead and m.node and m.node == primary]
    if shared:
        why.append(f"{', '.join(shared)} run on the primary's node {primary}")
    return replace(
        dataset, primary=primary, standbys=tuple(dict.fromkeys(standbys)), why=tuple(why)
    )


def _with_budgets(dataset: DataSet, unit: Unit, budgets: list[Budget]) -> DataSet:
    label_sets = [p.meta.labels for p in unit.pods]
    if unit.workload is not None:
        label_sets.append(unit.workload.template_labels)
    found = [
        b
        for b in budgets
        if b.meta.namespace == unit.meta.namespace
        and any(b.selector.selects(labels) for labels in label_sets)
    ]
    if not found:
        return dataset
    notes = []
    for budget in found:
        rule = (
            f"minAvailable {budget.min_available}"
            if budget.min_available
            else f"maxUnavailable {budget.max_unavailable or '?'}"
        )
        notes.append(f"PodDisruptionBudget {budget.meta.name} keeps its pods up ({rule})")
    return replace(dataset, why=(*dataset.why, *notes))
