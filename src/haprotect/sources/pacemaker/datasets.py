"""Which data a Pacemaker cluster makes highly available, and how.

Rules, in the order they are tried for each data-bearing primitive:

1. In a promotable clone (DRBD, pgsqlms, galera, SAP HANA...): the data is
   *replicated*; the promoted node is the primary, unpromoted ones standbys.
2. A Filesystem (or iSCSI LUN) on a DRBD device, named by its path
   (``/dev/drbd/by-res/r0``) or by a constraint or group tie to a DRBD
   primitive, or an LVM volume group tied to one (the LVM agents do not
   name their physical volumes; a volume group that needs a DRBD resource
   to run is taken to lie on it, the usual LVM-on-DRBD stack): *replicated*;
   primary where it is mounted or active, standbys where the DRBD resource
   runs without it.
3. Data whose directory (pgdata, datadir, an export) lies on a
   cluster-managed Filesystem inherits that filesystem's answer.
4. A Filesystem on an LVM volume group the cluster activates inherits the
   volume group's answer.
5. A Filesystem in a plain clone is a cluster filesystem, *shared* by all.
6. Any other failover resource: *shared* storage that the cluster moves to
   the node that runs it; the other online nodes are standbys.
7. A database or bundle directory on no cluster-managed storage is *local*
   to each node and not HA.

Rules 2, 3 and 4 (and bundle storage on a Filesystem) also record which data
set the new one lies on, as its ``backing``: the DRBD primitive's data set
under a Filesystem or LUN, the Filesystem holding a data directory, the
volume group under a Filesystem. Filesystems on a volume group are resolved
before the data inside them, so rule 3 sees them too.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, replace

from haprotect.model.topology import DataSet, Replication, Role
from haprotect.sources.mounts import holding
from haprotect.sources.pacemaker.agents import DataAgent, data_agent
from haprotect.sources.pacemaker.cib import CibConfig, Primitive
from haprotect.sources.pacemaker.graph import DependencyGraph
from haprotect.sources.pacemaker.state import ClusterState

_RUNNING = (Role.PROMOTED, Role.STARTED)


@dataclass(frozen=True, slots=True)
class _Facts:
    config: CibConfig
    state: ClusterState
    graph: DependencyGraph
    online: tuple[str, ...]  #: online cluster nodes, in configuration order
    drbds: tuple[Primitive, ...]
    volume_groups: tuple[tuple[str, Primitive], ...]  #: (vg name, LVM primitive)

    def where(self, primitive_id: str, *roles: Role) -> list[str]:
        placement = self.state.placement.get(primitive_id, {})
        return [node for node, role in placement.items() if role in roles]

    def nodes_for(self, primitive_id: str) -> list[str]:
        """Online nodes the resource may run on (not banned by a location constraint)."""
        banned: set[str] = set()
        for resource in [primitive_id, *(c.id for c in self.config.ancestors(primitive_id))]:
            banned |= self.config.banned.get(resource, set())
        return [n for n in self.online if n not in banned]


def infer_datasets(config: CibConfig, state: ClusterState, graph: DependencyGraph) -> list[DataSet]:
    online_names = {n.name for n in state.nodes if n.online}
    configured = [uname for _, uname in config.nodes]
    primitives = config.primitives.values()
    facts = _Facts(
        config,
        state,
        graph,
        online=tuple(n for n in configured if n in online_names),
        drbds=tuple(p for p in primitives if p.type == "drbd"),
        volume_groups=tuple(
            (vg, p)
            for p in primitives
            if p.type in ("LVM", "LVM-activate")
            and (vg := p.params.get("volgrpname") or p.params.get("vgname"))
        ),
    )
    first_pass: dict[str, DataSet] = {}
    pending: list[tuple[Primitive, DataAgent]] = []
    for primitive in config.primitives.values():
        agent = data_agent(primitive.type)
        if agent is None:
            continue
        dataset = _direct(facts, primitive, agent)
        if dataset is not None:
            first_pass[primitive.id] = dataset
        else:
            pending.append((primitive, agent))
    # Rule 4 first: a Filesystem on a volume group may itself hold data (rule 3).
    resolved = dict(first_pass)
    for primitive, agent in pending:
        if agent.kind == "filesystem":
            resolved[primitive.id] = _on_volume_group(facts, primitive, agent, first_pass)
    mounts = _Mounts(resolved.values())
    for primitive, agent in pending:
        if agent.kind != "filesystem":
            resolved[primitive.id] = _derived(facts, primitive, agent, mounts)
    resolved.update(_bundle_datasets(facts, mounts))
    order = {p: i for i, p in enumerate(config.primitives)}
    return sorted(resolved.values(), key=lambda d: (order.get(d.resource, len(order)), d.id))


def _location(primitive: Primitive, agent: DataAgent) -> dict[str, str]:
    return {k: primitive.params[k] for k in agent.location if k in primitive.params}


def _base(primitive: Primitive, agent: DataAgent, why: list[str]) -> DataSet:
    conditional = sorted(set(agent.location) & primitive.conditional)
    if conditional:
        why.append(f"{', '.join(conditional)} of {primitive.id} differ by rule (node or date)")
    return DataSet(
        id=primitive.id,
        kind=agent.kind,
        resource=primitive.id,
        location=_location(primitive, agent),
        ha=True,
        replication=Replication.SHARED,
        why=tuple(why),
    )


def _direct(facts: _Facts, primitive: Primitive, agent: DataAgent) -> DataSet | None:
    """Rules 1 and 2: data sets whose answer needs no other data set."""
    promotable = facts.config.promotable_parent(primitive.id)
    if promotable is not None:
        promoted = facts.where(primitive.id, Role.PROMOTED)
        standbys = facts.where(primitive.id, Role.UNPROMOTED)
        why = [
            f"{_describe(primitive)} runs in promotable clone {promotable.id}: "
            "the promoted instance replicates to the others"
        ]
        return _replicated(_base(primitive, agent, why), promoted, standbys)
    drbd = _drbd_backing(facts, primitive, agent)
    if drbd is not None:
        mounted = facts.where(primitive.id, *_RUNNING)
        standbys = [n for n in facts.where(drbd.id, *_RUNNING, Role.UNPROMOTED) if n not in mounted]
        res = drbd.params.get("drbd_resource", drbd.id)
        container = facts.config.promotable_parent(drbd.id)
        held = f", a promotable clone ({container.id})" if container else ""
        why = [f"{_describe(primitive)} is on DRBD resource {res} ({drbd.id}{held})"]
        dataset = replace(_base(primitive, agent, why), backing=drbd.id)
        return _replicated(dataset, mounted, standbys)
    if agent.path_param is not None and agent.kind != "filesystem":
        return None  # rule 3 or 7: decided once filesystems are known
    if agent.kind == "filesystem" and _lvm_backing(facts, primitive) is not None:
        return None  # rule 4
    return _shared(facts, primitive, agent)


def _replicated(dataset: DataSet, primaries: list[str], standbys: list[str]) -> DataSet:
    why = list(dataset.why)
    if not primaries:
        why.append("not running as primary anywhere now")
    elif len(primaries) > 1:
        why.append(
            f"primary on {len(primaries)} nodes ({', '.join(primaries)}); "
            f"{primaries[0]} is taken as the primary"
        )
        standbys = [*primaries[1:], *standbys]
    return replace(
        dataset,
        replication=Replication.REPLICATED,
        primary=primaries[0] if primaries else None,
        standbys=tuple(dict.fromkeys(standbys)),
        why=tuple(why),
    )


def _shared(facts: _Facts, primitive: Primitive, agent: DataAgent) -> DataSet:
    running = facts.where(primitive.id, *_RUNNING)
    clone = facts.config.clone_parent(primitive.id)
    if clone is not None:
        why = [
            f"{_describe(primitive)} runs on every node of clone {clone.id}: "
            f"shared storage, active on {', '.join(running) or 'no node now'}"
        ]
        return _base(primitive, agent, why)
    candidates = facts.nodes_for(primitive.id)
    primary = running[0] if running else None
    why = [
        f"{_describe(primitive)} is a failover resource: the cluster moves its storage "
        f"to the node that runs it ({primary or 'none now'})"
    ]
    return replace(
        _base(primitive, agent, why),
        primary=primary,
        standbys=tuple(n for n in candidates if n != primary),
    )


def _on_volume_group(
    facts: _Facts, primitive: Primitive, agent: DataAgent, known: dict[str, DataSet]
) -> DataSet:
    """Rule 4: a Filesystem inherits from the volume group its device is on."""
    lvm = _lvm_backing(facts, primitive)
    assert lvm is not None
    return _inherit(
        primitive,
        agent,
        known[lvm.id],
        f"its device is on volume group "
        f"{lvm.params.get('volgrpname') or lvm.params.get('vgname')} ({lvm.id})",
    )


def _derived(facts: _Facts, primitive: Primitive, agent: DataAgent, mounts: _Mounts) -> DataSet:
    """Rules 3 and 7: inherit from the Filesystem the data sits on, or be local."""
    path = primitive.params.get(agent.path_param or "", "")
    holder = mounts.holding(path) if path else None
    if holder is not None:
        return _inherit(
            primitive,
            agent,
            holder,
            f"{agent.path_param} {path} is on Filesystem {holder.id} "
            f"({holder.location.get('directory')})",
        )
    why = [
        f"{_describe(primitive)}: {agent.path_param} {path or '(unset)'} is on no "
        "cluster-managed storage, so each node holds its own copy"
    ]
    running = facts.where(primitive.id, *_RUNNING)
    return replace(
        _base(primitive, agent, why),
        ha=False,
        replication=Replication.LOCAL,
        primary=running[0] if running else None,
    )


def _inherit(primitive: Primitive, agent: DataAgent, holder: DataSet, reason: str) -> DataSet:
    """The answer of ``holder``, the data set this one lies on (its ``backing``)."""
    why = [f"{_describe(primitive)}: {reason}", *holder.why]
    return replace(
        _base(primitive, agent, why),
        ha=holder.ha,
        replication=holder.replication,
        primary=holder.primary,
        standbys=holder.standbys,
        backing=holder.id,
    )


class _Mounts:
    """Filesystem data sets by mount directory: which one holds a given path."""

    def __init__(self, known: Iterable[DataSet]) -> None:
        self._by_directory: dict[str, DataSet] = {}
        for dataset in known:
            mount = dataset.location.get("directory") if dataset.kind == "filesystem" else None
            if mount:
                self._by_directory.setdefault(posixpath.normpath(mount), dataset)

    def holding(self, path: str) -> DataSet | None:
        """The filesystem mounted deepest above ``path`` (or at it), if any."""
        return holding(self._by_directory, path)


def _drbd_backing(facts: _Facts, primitive: Primitive, agent: DataAgent) -> Primitive | None:
    drbds = facts.drbds
    if not drbds:
        return None
    if agent.kind == "lvm":
        tied = _tied(facts, primitive.id)
        return next((d for d in drbds if d.id in tied), None)
    if agent.device_param is None:
        return None
    device = primitive.params.get(agent.device_param, "")
    if device.startswith("/dev/drbd/by-res/"):
        name = device.removeprefix("/dev/drbd/by-res/").split("/")[0]
        for drbd in drbds:
            if drbd.params.get("drbd_resource") == name:
                return drbd
    if device.startswith("/dev/drbd"):
        tied = _tied(facts, primitive.id)
        return next((d for d in drbds if d.id in tied), None)
    return None


def _lvm_backing(facts: _Facts, primitive: Primitive) -> Primitive | None:
    device = primitive.params.get("device", "")
    for vg, lvm in facts.volume_groups:
        if device.startswith((f"/dev/{vg}/", f"/dev/mapper/{vg}-")):
            return lvm
    return None


def _tied(facts: _Facts, primitive_id: str, depth: int = 4) -> set[str]:
    """Primitives this one needs, directly or through a short chain."""
    seen: set[str] = set()
    frontier = {primitive_id}
    for _ in range(depth):
        frontier = {t for s in frontier for t in facts.graph.needs.get(s, ())} - seen
        seen |= frontier
    return seen


def _bundle_datasets(facts: _Facts, mounts: _Mounts) -> dict[str, DataSet]:
    out: dict[str, DataSet] = {}
    for bundle in facts.config.containers.values():
        resource = next((m for m in bundle.members if m in facts.config.primitives), bundle.id)
        for mapping in bundle.storage:
            if not mapping.read_write or not mapping.source or _is_runtime(mapping.source):
                continue
            dataset_id = f"{bundle.id}/{mapping.id}"
            location = {"source-dir": mapping.source, "target-dir": mapping.target}
            holder = mounts.holding(mapping.source)
            lead = f"bundle {bundle.id} mounts {mapping.source} read-write at {mapping.target}"
            if holder is not None:
                out[dataset_id] = replace(
                    holder,
                    id=dataset_id,
                    kind="bundle-storage",
                    resource=resource,
                    location=location,
                    why=(f"{lead}; it is on Filesystem {holder.id}", *holder.why),
                    backing=holder.id,
                )
            else:
                out[dataset_id] = DataSet(
                    dataset_id,
                    "bundle-storage",
                    resource,
                    location,
                    ha=False,
                    replication=Replication.LOCAL,
                    why=(f"{lead}; a host directory on each node, not replicated by the cluster",),
                )
    return out


def _is_runtime(path: str) -> bool:
    """Sockets and kernel interfaces (/dev/log, /run/...) are mapped, but are not data."""
    return path.startswith(_RUNTIME_DIRS) or path in ("/dev", "/proc", "/sys", "/run")


_RUNTIME_DIRS = ("/dev/", "/proc/", "/sys/", "/run/")


def _describe(primitive: Primitive) -> str:
    return f"{primitive.type} {primitive.id}"
