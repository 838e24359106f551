"""Where a PersistentVolumeClaim's data lives, and so whether Kubernetes keeps it available.

Tried in order for one claim (the data set of a claim that no replication
covers):

1. A claim that is not Bound holds no data yet: not HA.
2. A volume on one node (``local``, ``hostPath``, or a node affinity that
   only one node meets): *local* to that node, not HA; the pod cannot run
   elsewhere with it.
3. A ReadWriteMany or ReadOnlyMany claim mounted by pods on several nodes
   at once: *shared* storage, active everywhere.
4. Any other (network) volume: *shared* storage that Kubernetes attaches to
   the node running the pod that mounts it, and moves with the pod; the
   primary is that node, the standbys the other ready nodes the volume's
   node affinity allows (a zonal disk: the nodes of its zone).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from haprotect.model.topology import DataSet, Replication
from haprotect.redact import redact_value
from haprotect.sources.kubernetes.objects import Claim, Objects, PodInfo, Volume

LOCAL_SOURCES = ("local", "hostPath")
NO_PROVISIONER = "kubernetes.io/no-provisioner"


@dataclass(frozen=True, slots=True)
class Storage:
    """The claims, volumes and nodes of one cluster, by name."""

    claims: dict[tuple[str, str], Claim]
    volumes: dict[str, Volume]
    provisioners: dict[str, str]  #: storage class -> provisioner
    node_labels: dict[str, dict[str, str]]
    online: tuple[str, ...]

    @classmethod
    def of(cls, objects: Objects, nodes: Iterable[tuple[str, bool]]) -> Storage:
        known = {n.name: n.labels for n in objects.nodes}
        node_list = list(nodes)
        labels = {
            name: {"kubernetes.io/hostname": name, **known.get(name, {})} for name, _ in node_list
        }
        return cls(
            {(c.meta.namespace, c.meta.name): c for c in objects.claims},
            {v.name: v for v in objects.volumes},
            {s.name: s.provisioner for s in objects.classes},
            labels,
            tuple(name for name, online in node_list if online),
        )

    def allowed(self, volume: Volume | None) -> list[str]:
        """Nodes the volume can be attached to (all, when it names no affinity)."""
        if volume is None or not volume.affinity:
            return list(self.node_labels)
        return [
            name
            for name, labels in self.node_labels.items()
            if any(all(r.holds(labels) for r in term) for term in volume.affinity)
        ]

    def local_node(self, claim: Claim, mounted_on: list[str]) -> tuple[bool, str | None]:
        """Whether the claim's data is on one node only, and which."""
        volume = self.volumes.get(claim.volume)
        if volume is None:
            if self.provisioners.get(claim.storage_class) == NO_PROVISIONER:
                return True, mounted_on[0] if mounted_on else None
            return False, None
        allowed = self.allowed(volume) if volume.affinity else []
        if len(allowed) == 1:
            return True, allowed[0]
        if volume.source in LOCAL_SOURCES:
            return True, mounted_on[0] if mounted_on else None
        return False, None


def location_of(claim: Claim, storage: Storage) -> dict[str, str]:
    volume = storage.volumes.get(claim.volume)
    values = {
        "namespace": claim.meta.namespace,
        "claim": claim.meta.name,
        "volume": claim.volume,
        "storage-class": claim.storage_class,
        "access-modes": ",".join(claim.access_modes),
        "volume-mode": claim.volume_mode,
        "size": claim.size,
        "driver": (volume.driver or volume.source) if volume is not None else "",
    }
    return {k: redact_value(k, v) for k, v in values.items() if v}


def claim_dataset(
    claim_key: tuple[str, str], resource: str, pods: list[PodInfo], storage: Storage
) -> DataSet:
    """The data set of one claim that ``pods`` of ``resource`` mount (the rules above)."""
    namespace, name = claim_key
    claim = storage.claims.get(claim_key)
    lead = f"claim {namespace}/{name} of {resource}"
    not_ha = DataSet(
        f"{namespace}/pvc/{name}",
        "pvc",
        resource,
        location_of(claim, storage) if claim else {"namespace": namespace, "claim": name},
        ha=False,
        replication=Replication.LOCAL,
    )
    if claim is None:
        return replace(not_ha, why=(f"{lead} is not among the objects read",))
    if claim.phase != "Bound" or not claim.volume:
        return replace(
            not_ha, why=(f"{lead} is {claim.phase or 'unbound'}: no volume holds its data yet",)
        )
    running = list(
        dict.fromkeys(p.node for p in pods if p.phase == "Running" and p.node and name in p.claims)
    )
    local, node = storage.local_node(claim, running)
    if local:
        why = f"{lead}: volume {claim.volume} is on {node or 'one node'} only, so the pod "
        return replace(not_ha, primary=node, why=(why + "cannot run elsewhere with its data",))
    many = {"ReadWriteMany", "ReadOnlyMany"} & set(claim.access_modes)
    if many and len(running) > 1:
        why = (
            f"{lead} ({', '.join(sorted(many))}) is mounted on {len(running)} nodes at "
            f"once ({', '.join(running)}): shared storage"
        )
        return replace(not_ha, ha=True, replication=Replication.SHARED, why=(why,))
    primary = running[0] if running else None
    volume = storage.volumes.get(claim.volume)
    allowed = set(storage.allowed(volume))
    reasons = [
        f"{lead}: volume {claim.volume} is network storage that Kubernetes attaches to the "
        f"node running the pod ({primary or 'none now'}) and moves with it"
    ]
    if volume is None:
        reasons.append(
            f"volume {claim.volume} is not among the objects read; taken as network storage"
        )
    elif volume.affinity:
        reasons.append(f"its node affinity allows {', '.join(sorted(allowed)) or 'no known node'}")
    return replace(
        not_ha,
        ha=True,
        replication=Replication.SHARED,
        primary=primary,
        standbys=tuple(n for n in storage.online if n in allowed and n != primary),
        why=tuple(reasons),
    )
