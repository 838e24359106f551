"""What each VCS resource type means for data protection.

The same shape as the Pacemaker source's table (:class:`DataAgent`): the data
set kind, the layer, the attributes locating the data (in the agent's own
spelling, as VCS's bundled and enterprise agents name them), the attribute
that is a directory and the one that names a block device. Kinds are the
project's: a VCS ``Mount`` is a ``filesystem`` like a Pacemaker
``Filesystem``. Attributes checked against the agents' reference guides:
Mount and CFSMount (MountPoint, BlockDevice, FSType), CVMVolDg
(CVMDiskGroup, CVMVolume), RVG (RVG, DiskGroup), RVGPrimary and
RVGSharedPri (RvgResourceName).
"""

from __future__ import annotations

from haprotect.model.topology import Layer
from haprotect.sources.pacemaker.agents import DataAgent

DATA_TYPES: dict[str, DataAgent] = {
    "Mount": DataAgent(
        "filesystem", Layer.STORAGE, ("BlockDevice", "MountPoint", "FSType"), "MountPoint",
        "BlockDevice",
    ),
    "CFSMount": DataAgent(
        "filesystem", Layer.STORAGE, ("BlockDevice", "MountPoint"), "MountPoint", "BlockDevice"
    ),
    "DiskGroup": DataAgent("vxvm-diskgroup", Layer.STORAGE, ("DiskGroup",)),
    "CVMVolDg": DataAgent("vxvm-diskgroup", Layer.STORAGE, ("CVMDiskGroup", "CVMVolume")),
    "Volume": DataAgent("vxvm-volume", Layer.STORAGE, ("DiskGroup", "Volume")),
    "LVMVolumeGroup": DataAgent("lvm", Layer.STORAGE, ("VolumeGroup",)),
    "LVMLogicalVolume": DataAgent("lvm", Layer.STORAGE, ("VolumeGroup", "LogicalVolume")),
    "Zpool": DataAgent("zfs", Layer.STORAGE, ("PoolName",)),
    "RVG": DataAgent("vvr-rvg", Layer.STORAGE, ("RVG", "DiskGroup")),
    "RVGShared": DataAgent("vvr-rvg", Layer.STORAGE, ("RVG", "DiskGroup")),
    "Share": DataAgent("nfs-export", Layer.FRONTEND, ("PathName", "Options"), "PathName"),
    "NFSRestart": DataAgent("nfs-state", Layer.STORAGE, ("LocksPathName",), "LocksPathName"),
    "Oracle": DataAgent("oracle", Layer.DATABASE, ("Sid", "Home", "Owner")),
    "Sybase": DataAgent("sybase", Layer.DATABASE, ("Server", "Home", "Owner")),
    "Db2udb": DataAgent(
        "db2", Layer.DATABASE, ("DB2InstOwner", "DB2InstHome", "DatabaseName"), "DB2InstHome"
    ),
    "MySQL": DataAgent("mysql", Layer.DATABASE, ("DataDir", "MyCnf", "BaseDir"), "DataDir"),
    "PostgreSQL": DataAgent("postgresql", Layer.DATABASE, ("PGDATA", "PGPort"), "PGDATA"),
}  # fmt: skip

#: Types that make a group the cluster's shared-storage infrastructure (CVM, CFS).
CVM_TYPES = frozenset({"CVMCluster", "CVMVxconfigd", "CFSfsckd", "CVMVolDg", "CFSMount"})
#: Types whose resource, online, makes the RVG it names the replication primary.
RVG_PRIMARY_TYPES = frozenset({"RVGPrimary", "RVGSharedPri"})

_LAYER_BY_TYPE: dict[str, Layer] = {
    **{
        name: Layer.STORAGE
        for name in (
            "CVMCluster", "CVMVxconfigd", "CFSfsckd", "RVGPrimary", "RVGSharedPri",
            "RVGLogowner", "DiskGroupSnap", "VolumeSet", "LVMVG", "DiskReservation",
            "CoordPoint", "NFS",
        )
    },
    **{name: Layer.DATABASE for name in ("Netlsnr", "SybaseBk", "ASMInst", "ASMDG", "CSSD")},
    **{
        name: Layer.FRONTEND
        for name in ("IP", "NIC", "IPMultiNIC", "MultiNICA", "MultiNICB", "IPMultiNICB",
                     "DNS", "Apache", "SambaShare", "SambaServer", "NetBios", "Proxy")
    },
}  # fmt: skip


def data_type(type_name: str) -> DataAgent | None:
    return DATA_TYPES.get(type_name)


def layer_of(type_name: str) -> Layer:
    spec = DATA_TYPES.get(type_name)
    if spec is not None:
        return spec.layer
    return _LAYER_BY_TYPE.get(type_name, Layer.APPLICATION)
