"""What each resource agent means for data protection.

A *data-bearing* agent owns data worth backing up; its entry names the data
set kind, which of the agent's own parameters locate the data, and which of
them is a path (so that data inside another data set's mount can be tied to
it). Every agent, data-bearing or not, falls into a layer (storage,
database, application, front end) used to split applications into tiers.
"""

from __future__ import annotations

from dataclasses import dataclass

from haprotect.model.topology import Layer


@dataclass(frozen=True, slots=True)
class DataAgent:
    """A data-bearing agent: the kind of data set it owns, its layer, the parameters locating it."""

    kind: str
    layer: Layer
    location: tuple[str, ...]  #: parameter names, in the agent's own spelling
    path_param: str | None = None  #: the parameter that is a directory, if any
    device_param: str | None = None  #: the parameter that names a block device, if any


DATA_AGENTS: dict[str, DataAgent] = {
    "Filesystem": DataAgent(
        "filesystem", Layer.STORAGE, ("device", "directory", "fstype"), "directory", "device"
    ),
    "drbd": DataAgent("drbd", Layer.STORAGE, ("drbd_resource",)),
    "LVM": DataAgent("lvm", Layer.STORAGE, ("volgrpname",)),
    "LVM-activate": DataAgent("lvm", Layer.STORAGE, ("vgname", "lvname")),
    "iSCSILogicalUnit": DataAgent(
        "iscsi-lun", Layer.STORAGE, ("path", "lun", "target_iqn"), None, "path"
    ),
    "Raid1": DataAgent("md-raid", Layer.STORAGE, ("raidconf", "raiddev")),
    "ZFS": DataAgent("zfs", Layer.STORAGE, ("pool",)),
    "nfsserver": DataAgent(
        "nfs-state", Layer.STORAGE, ("nfs_shared_infodir",), "nfs_shared_infodir"
    ),
    "exportfs": DataAgent("nfs-export", Layer.FRONTEND, ("directory", "clientspec"), "directory"),
    "pgsql": DataAgent("postgresql", Layer.DATABASE, ("pgdata", "pgport"), "pgdata"),
    "pgsqlms": DataAgent("postgresql", Layer.DATABASE, ("pgdata", "pgport"), "pgdata"),
    "mysql": DataAgent("mysql", Layer.DATABASE, ("datadir", "config"), "datadir"),
    "mariadb": DataAgent("mysql", Layer.DATABASE, ("datadir", "config"), "datadir"),
    "galera": DataAgent("galera", Layer.DATABASE, ("datadir", "wsrep_cluster_address"), "datadir"),
    "oracle": DataAgent("oracle", Layer.DATABASE, ("sid", "home")),
    "db2": DataAgent("db2", Layer.DATABASE, ("instance", "dblist")),
    "SAPHana": DataAgent("sap-hana", Layer.DATABASE, ("SID", "InstanceNumber")),
    "SAPHanaController": DataAgent("sap-hana", Layer.DATABASE, ("SID", "InstanceNumber")),
    "VirtualDomain": DataAgent("virtual-machine", Layer.APPLICATION, ("config",)),
}

_LAYER_BY_TYPE: dict[str, Layer] = {
    **{name: Layer.STORAGE for name in ("iSCSITarget", "clvmd", "lvmlockd", "controld", "o2cb")},
    **{name: Layer.DATABASE for name in ("SAPHanaTopology", "oralsnr", "redis", "mongodb")},
    **{
        name: Layer.FRONTEND
        for name in (
            "IPaddr",
            "IPaddr2",
            "IPsrcaddr",
            "IPv6addr",
            "apache",
            "nginx",
            "haproxy",
            "portblock",
            "azure-lb",
            "aws-vpc-move-ip",
            "gcp-vpc-move-vip",
            "VIPArip",
        )
    },
}


#: Agents whose parameters a policy decision reads: the parameters and their defaults
#: (HAProxy's agent, ``ocf:heartbeat:haproxy``: its configuration file, ``conffile``).
SETTINGS: dict[str, dict[str, str]] = {
    "haproxy": {"conffile": "/etc/haproxy/haproxy.cfg"},
}


def settings_of(agent_type: str, params: dict[str, str]) -> dict[str, str]:
    """The parameters of ``agent_type`` that a policy decision reads, defaults filled in."""
    return {
        name: params.get(name) or default for name, default in SETTINGS.get(agent_type, {}).items()
    }


def data_agent(agent_type: str) -> DataAgent | None:
    return DATA_AGENTS.get(agent_type)


def layer_of(agent_type: str) -> Layer:
    spec = DATA_AGENTS.get(agent_type)
    if spec is not None:
        return spec.layer
    return _LAYER_BY_TYPE.get(agent_type, Layer.APPLICATION)


def is_fencing(agent: str) -> bool:
    return agent.startswith("stonith:")
