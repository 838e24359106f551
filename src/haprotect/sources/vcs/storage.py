"""Which storage of the cluster a device or path names.

VCS agents name their storage by attribute values, not by links: a Mount's
``BlockDevice`` ``/dev/vx/dsk/DG/VOL`` is volume VOL of VxVM disk group DG,
``/dev/VG/LV`` or ``/dev/mapper/VG-LV`` a logical volume of LVM volume group
VG, a ZFS Mount's ``BlockDevice`` ``POOL/fs`` a dataset of pool POOL. This
module indexes the resources that provide each (DiskGroup, CVMVolDg, RVG,
Volume, LVM and Zpool resources) and the groups that activate shared disk
groups (a CFSfsckd's or CVMVolDg's ``ActivationMode``/``CVMDiskGroup``), and
finds the provider of a device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from haprotect.sources.vcs.config import MainCf, VcsResource


@dataclass(frozen=True, slots=True)
class Device:
    """What a block device path names: a VxVM volume, an LVM volume or a ZFS pool."""

    manager: str  #: "vxvm", "lvm" or "zfs"
    container: str  #: disk group, volume group or pool
    volume: str = ""


@dataclass(slots=True)
class StorageIndex:
    """Providers of storage in one main.cf."""

    #: disk group -> the resource that imports it (DiskGroup, CVMVolDg) and the RVG on it
    disk_groups: dict[str, VcsResource] = field(default_factory=dict)
    rvgs: dict[str, VcsResource] = field(default_factory=dict)
    volumes: dict[tuple[str, str], VcsResource] = field(default_factory=dict)
    volume_groups: dict[str, VcsResource] = field(default_factory=dict)
    logical_volumes: dict[tuple[str, str], VcsResource] = field(default_factory=dict)
    pools: dict[str, VcsResource] = field(default_factory=dict)
    #: shared disk group -> groups that activate it (CVMVolDg, CFSfsckd ActivationMode)
    activated_by: dict[str, list[str]] = field(default_factory=dict)
    #: groups running CVM (a CVMCluster resource)
    cvm_groups: list[str] = field(default_factory=list)


def index_storage(config: MainCf) -> StorageIndex:
    index = StorageIndex()
    for res in config.resources.values():
        attrs = res.attrs
        if res.type == "DiskGroup" and (dg := attrs.text("DiskGroup")):
            index.disk_groups.setdefault(dg, res)
        elif res.type == "CVMVolDg" and (dg := attrs.text("CVMDiskGroup")):
            index.disk_groups.setdefault(dg, res)
            _activates(index, dg, res.group)
        elif res.type in ("RVG", "RVGShared") and (dg := attrs.text("DiskGroup")):
            index.rvgs.setdefault(dg, res)
        elif res.type == "Volume" and (dg := attrs.text("DiskGroup")):
            index.volumes.setdefault((dg, attrs.text("Volume") or ""), res)
        elif res.type == "LVMVolumeGroup" and (vg := attrs.text("VolumeGroup")):
            index.volume_groups.setdefault(vg, res)
        elif res.type == "LVMLogicalVolume" and (vg := attrs.text("VolumeGroup")):
            index.logical_volumes.setdefault((vg, attrs.text("LogicalVolume") or ""), res)
        elif res.type == "Zpool" and (pool := attrs.text("PoolName")):
            index.pools.setdefault(pool, res)
        elif res.type == "CVMCluster" and res.group not in index.cvm_groups:
            index.cvm_groups.append(res.group)
        local_modes = attrs.per_system.get("ActivationMode", {}).values()
        modes = [attrs.get("ActivationMode"), *local_modes]
        for mode in modes:
            if isinstance(mode, dict):
                for dg in mode:
                    _activates(index, dg, res.group)
    return index


def _activates(index: StorageIndex, dg: str, group: str) -> None:
    groups = index.activated_by.setdefault(dg, [])
    if group not in groups:
        groups.append(group)


def parse_device(device: str, fstype: str | None, index: StorageIndex) -> Device | None:
    """What ``device`` names, or None for a plain disk or a device of no known kind."""
    for prefix in ("/dev/vx/dsk/", "/dev/vx/rdsk/"):
        if device.startswith(prefix):
            parts = device.removeprefix(prefix).split("/")
            if len(parts) >= 2 and parts[0]:
                return Device("vxvm", parts[0], parts[1])
    if (fstype or "").lower() == "zfs" and device and not device.startswith("/"):
        return Device("zfs", device.split("/", maxsplit=1)[0])
    for vg in index.volume_groups.keys() | {vg for vg, _ in index.logical_volumes}:
        if device.startswith(f"/dev/{vg}/"):
            return Device("lvm", vg, device.removeprefix(f"/dev/{vg}/"))
        if device.startswith(f"/dev/mapper/{vg}-"):
            return Device("lvm", vg, device.removeprefix(f"/dev/mapper/{vg}-"))
    return None


def provider(device: Device, index: StorageIndex) -> VcsResource | None:
    """The resource the device lies on, most specific first (volume, then its container)."""
    if device.manager == "vxvm":
        return (
            index.volumes.get((device.container, device.volume))
            or index.disk_groups.get(device.container)
            or index.rvgs.get(device.container)
        )
    if device.manager == "lvm":
        return index.logical_volumes.get(
            (device.container, device.volume)
        ) or index.volume_groups.get(device.container)
    return index.pools.get(device.container)
