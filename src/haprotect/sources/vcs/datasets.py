"""Which data a VCS cluster makes highly available, and how.

Rules, in the order they are tried for each resource of a data-bearing type
(:mod:`haprotect.sources.vcs.agents`):

1. An RVG (VVR replication): *replicated* to the secondary site (another
   cluster, so no standby here); its primary is the system where an
   RVGPrimary or RVGSharedPri naming it (``RvgResourceName``) is online, or,
   with no such resource, where the RVG is online.
2. Storage on other storage (a Mount on a VxVM volume, disk group, LVM
   volume or ZFS pool a resource of the cluster provides; a Volume or disk
   group of a replicated RVG's disk group): lies on it (``backing``), and is
   *replicated* when what it lies on is; else as rule 4.
3. Data whose directory (MySQL's DataDir, a DB2 instance home, a Share's
   PathName) lies under a Mount's MountPoint inherits that Mount's answer;
   so does a database whose agent names no directory (Oracle, Sybase) and
   that requires a Mount through its group's links (the first one found).
4. Any other resource: *shared* storage its group moves. In a failover
   group, the primary is the system where it is online and the standbys are
   the other systems of the group's SystemList, by priority (less those
   where the group is disabled and, when the state is known, those not
   RUNNING); in a parallel group it is shared by all its systems at once.
5. A directory on no Mount of the cluster is *local* to each system, not HA.

A resource with ``Enabled = 0``, or in a group disabled on every system, is
not HA (VCS does not manage it). Critical = 0, per-system values of a
locating attribute and global groups are noted in the data set's ``why``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, replace

from haprotect.model.topology import DataSet, Layer, Replication
from haprotect.sources.mounts import holding
from haprotect.sources.pacemaker.agents import DataAgent
from haprotect.sources.vcs.agents import RVG_PRIMARY_TYPES, data_type
from haprotect.sources.vcs.config import MainCf, VcsResource
from haprotect.sources.vcs.placement import Placement
from haprotect.sources.vcs.storage import StorageIndex, parse_device, provider

#: the order data sets are resolved in, so that what one lies on is known before it
_BOTTOM_UP = {
    "RVG": 0, "RVGShared": 0,
    "DiskGroup": 1, "CVMVolDg": 1, "LVMVolumeGroup": 1, "Zpool": 1,
    "Volume": 2, "LVMLogicalVolume": 2,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Facts:
    config: MainCf
    placement: Placement
    index: StorageIndex


def infer_datasets(config: MainCf, placement: Placement, index: StorageIndex) -> list[DataSet]:
    facts = _Facts(config, placement, index)
    resolved: dict[str, DataSet] = {}
    later: list[tuple[VcsResource, DataAgent]] = []
    # storage first, from the bottom (RVGs, disk groups) up, so rule 2 finds what it lies on
    typed = [(r, a) for r in config.resources.values() if (a := data_type(r.type)) is not None]
    for resource, agent in sorted(typed, key=lambda ra: _BOTTOM_UP.get(ra[0].type, 3)):
        if agent.layer is Layer.DATABASE or (
            agent.path_param is not None and agent.kind != "filesystem"
        ):
            later.append((resource, agent))
            continue
        resolved[resource.name] = _storage(facts, resource, agent, resolved)
    mounts = _Mounts(resolved.values())
    for resource, agent in later:
        resolved[resource.name] = _directory(facts, resource, agent, mounts)
    position = {name: i for i, name in enumerate(config.resources)}
    return sorted(resolved.values(), key=lambda d: position[d.resource])


def _storage(
    facts: _Facts, resource: VcsResource, agent: DataAgent, known: dict[str, DataSet]
) -> DataSet:
    if agent.kind == "vvr-rvg":
        return _rvg(facts, resource, agent)
    below = _below(facts, resource, agent)
    dataset = _own(facts, resource, agent)
    if below is None or below.name not in known:
        shared = _shared_disk_group(facts, resource, agent)
        return replace(dataset, why=(*dataset.why, shared)) if shared else dataset
    holder = known[below.name]
    why = [f"{_describe(resource)} lies on {_describe(below)}", *dataset.why]
    if holder.replication is Replication.REPLICATED:
        primary = dataset.primary or holder.primary
        why = [
            f"{_describe(resource)} lies on {_describe(below)}, replicated: "
            f"the copy is read on the replication primary ({primary or 'none now'})",
            *holder.why,
            *dataset.why[1:],
        ]
        return replace(
            dataset,
            replication=Replication.REPLICATED,
            primary=primary,
            standbys=holder.standbys,
            why=tuple(why),
            backing=holder.id,
        )
    return replace(dataset, why=tuple(why), backing=holder.id)


def _below(facts: _Facts, resource: VcsResource, agent: DataAgent) -> VcsResource | None:
    attrs = resource.attrs
    if agent.kind in ("vxvm-diskgroup", "vxvm-volume"):
        dg = attrs.text("DiskGroup") or attrs.text("CVMDiskGroup") or ""
        if agent.kind == "vxvm-volume" and dg in facts.index.disk_groups:
            return facts.index.disk_groups[dg]
        return facts.index.rvgs.get(dg)
    if agent.kind == "lvm" and resource.type == "LVMLogicalVolume":
        return facts.index.volume_groups.get(attrs.text("VolumeGroup") or "")
    if agent.device_param is None:
        return None
    device = parse_device(attrs.text(agent.device_param) or "", attrs.text("FSType"), facts.index)
    return provider(device, facts.index) if device is not None else None


def _shared_disk_group(facts: _Facts, resource: VcsResource, agent: DataAgent) -> str | None:
    """Why a device on a disk group no resource imports is CVM's, if it is."""
    attrs = resource.attrs
    device = parse_device(attrs.text(agent.device_param or "") or "", None, facts.index)
    if device is None or device.manager != "vxvm":
        return None
    activating = facts.index.activated_by.get(device.container)
    if activating:
        return (
            f"its disk group {device.container} is a shared (CVM) disk group that group "
            f"{', '.join(activating)} activates"
        )
    if facts.index.cvm_groups:
        return (
            f"its disk group {device.container} is imported by no resource: taken to be a "
            f"shared (CVM) disk group of group {', '.join(facts.index.cvm_groups)}"
        )
    return None


def _rvg(facts: _Facts, resource: VcsResource, agent: DataAgent) -> DataSet:
    """Rule 1: VVR replicates the RVG's volumes to the secondary site."""
    primaries = [
        r
        for r in facts.config.resources.values()
        if r.type in RVG_PRIMARY_TYPES and r.attrs.text("RvgResourceName") == resource.name
    ]
    if primaries:
        nodes = [n for p in primaries for n in facts.placement.online(p.name)]
        names = ", ".join(f"{p.type} {p.name}" for p in primaries)
        lead = f"the replication primary is where {names} is online"
    else:
        nodes = facts.placement.online(resource.name)
        lead = "no RVGPrimary names it: the primary is where it is online"
    why = [
        f"{_describe(resource)} is replicated by VVR to a secondary site in another cluster; "
        f"{lead} ({', '.join(nodes) or 'none now'})",
        *_notes(facts, resource, agent),
    ]
    return DataSet(
        id=resource.name,
        kind=agent.kind,
        resource=resource.name,
        location=_location(facts, resource, agent, nodes[0] if nodes else None),
        ha=_managed(facts, resource) is None,
        replication=Replication.REPLICATED,
        primary=nodes[0] if nodes else None,
        why=tuple(why),
    )


def _own(facts: _Facts, resource: VcsResource, agent: DataAgent) -> DataSet:
    """Rule 4: shared storage that the resource's group moves or shares."""
    group = facts.config.groups[resource.group]
    online = facts.placement.online(resource.name)
    candidates = facts.placement.candidates(group)
    ranked = ", ".join(f"{s}={p}" for s, p in group.attrs.mapping("SystemList").items()) or (
        ", ".join(group.systems()) or "no systems"
    )
    if group.parallel:
        why = [
            f"{_describe(resource)} runs on every system of parallel group {group.name} "
            f"({ranked}): shared storage, online on {', '.join(online) or 'no system now'}"
        ]
        primary, standbys = None, tuple[str, ...]()
    else:
        primary = online[0] if online else None
        why = [
            f"{_describe(resource)} is in failover group {group.name}, which moves its storage "
            f"between its systems by priority ({ranked}); online on {primary or 'none now'}"
        ]
        if group.autostart():
            why.append(f"group {group.name} starts on {', '.join(group.autostart())} at boot "
                       "(AutoStartList)")  # fmt: skip
        standbys = tuple(s for s in candidates if s != primary)
    why += _notes(facts, resource, agent)
    return DataSet(
        id=resource.name,
        kind=agent.kind,
        resource=resource.name,
        location=_location(facts, resource, agent, primary),
        ha=_managed(facts, resource) is None,
        replication=Replication.SHARED,
        primary=primary,
        standbys=standbys,
        why=tuple(why),
    )


def _directory(facts: _Facts, resource: VcsResource, agent: DataAgent, mounts: _Mounts) -> DataSet:
    """Rules 3 and 5: inherit from the Mount the directory is on, or be local."""
    param = agent.path_param or ""
    path = resource.attrs.text(param) or ""
    holder = mounts.holding(path) if path.startswith("/") else None
    if holder is not None:
        reason = f"{param} {path} is on Mount {holder.id} ({holder.location.get('MountPoint')})"
    elif not param:
        holder = next(
            (mounts.by_id[r] for r in _required(facts, resource) if r in mounts.by_id), None
        )
        if holder is None:
            return _own(facts, resource, agent)
        reason = (
            f"it requires Mount {holder.id}, so its data is taken to be on "
            f"{holder.location.get('MountPoint')}"
        )
    if holder is not None:
        own = _own(facts, resource, agent)
        why = [
            f"{_describe(resource)}: {reason}",
            *holder.why,
            *own.why[1:],
        ]
        return replace(
            own,
            ha=holder.ha and own.ha,
            replication=holder.replication,
            primary=holder.primary,
            standbys=holder.standbys,
            why=tuple(why),
            backing=holder.id,
        )
    online = facts.placement.online(resource.name)
    why = [
        f"{_describe(resource)}: {param} {path or '(unset)'} is on no Mount of the cluster, "
        "so each system holds its own copy",
        *_notes(facts, resource, agent),
    ]
    return DataSet(
        id=resource.name,
        kind=agent.kind,
        resource=resource.name,
        location=_location(facts, resource, agent, online[0] if online else None),
        ha=False,
        replication=Replication.LOCAL,
        primary=online[0] if online else None,
        why=tuple(why),
    )


def _location(
    facts: _Facts, resource: VcsResource, agent: DataAgent, system: str | None
) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in agent.location:
        value = resource.attrs.get(name, system)
        if value is None and resource.attrs.localized(name):
            value = next(iter(resource.attrs.per_system[name].values()))
        if isinstance(value, str) and value:
            out[name] = value
        elif isinstance(value, tuple) and value:
            out[name] = ",".join(value)
    return out


def _managed(facts: _Facts, resource: VcsResource) -> str | None:
    """Why VCS does not manage the resource, or None when it does."""
    group = facts.config.groups[resource.group]
    if not resource.enabled():
        return f"{_describe(resource)} is not enabled (Enabled = 0): VCS does not manage it"
    systems = group.systems()
    if systems and not any(group.enabled_on(s) for s in systems):
        return f"group {group.name} is disabled on every system (Enabled = 0)"
    return None


def _notes(facts: _Facts, resource: VcsResource, agent: DataAgent) -> list[str]:
    group = facts.config.groups[resource.group]
    notes: list[str] = []
    unmanaged = _managed(facts, resource)
    if unmanaged is not None:
        notes.append(f"not HA: {unmanaged}")
    if not resource.critical():
        notes.append(
            f"not critical (Critical = 0): its fault does not fail group {group.name} over"
        )
    localized = [n for n in agent.location if resource.attrs.localized(n)]
    if localized:
        notes.append(f"{', '.join(localized)} of {resource.name} differ by system (@system values)")
    clusters = group.clusters()
    if clusters:
        notes.append(
            f"group {group.name} is global (ClusterList: {', '.join(clusters)}): "
            "it can fail over to another cluster"
        )
    return notes


def _required(facts: _Facts, resource: VcsResource) -> list[str]:
    """Resources of its group that ``resource`` requires, directly or through others."""
    links = facts.config.groups[resource.group].links
    found: list[str] = []
    frontier = [resource.name]
    while frontier:
        current = frontier.pop(0)
        for source, target, _ in links:
            if source == current and target not in found and target != resource.name:
                found.append(target)
                frontier.append(target)
    return found


class _Mounts:
    """Mount data sets by mount point (which one holds a given path) and by id."""

    def __init__(self, known: Iterable[DataSet]) -> None:
        self._by_point: dict[str, DataSet] = {}
        self.by_id: dict[str, DataSet] = {}
        for dataset in known:
            point = dataset.location.get("MountPoint") if dataset.kind == "filesystem" else None
            if point:
                self._by_point.setdefault(posixpath.normpath(point), dataset)
                self.by_id[dataset.id] = dataset

    def holding(self, path: str) -> DataSet | None:
        return holding(self._by_point, path)


def _describe(resource: VcsResource) -> str:
    return f"{resource.type} {resource.name}"
