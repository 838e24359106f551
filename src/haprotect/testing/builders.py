"""Small builders for hand-made topologies in tests.

``web_cluster()`` is the reference example used across the policy tests: a
replicated filesystem on DRBD, a database on shared storage, a local scratch
directory, and a three-tier application over them. ``layered_cluster()`` is
the layered one: a DRBD device, a filesystem on it and a database directory
inside the filesystem, each a data set lying on the one below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from haprotect.model.topology import (
    Application,
    Cluster,
    DataSet,
    Manager,
    Node,
    Replication,
    Resource,
    Role,
    Tier,
    Topology,
)


def replicated(
    dataset_id: str,
    primary: str | None = "node1",
    standbys: Sequence[str] = ("node2",),
    *,
    kind: str = "filesystem",
    resource: str | None = None,
    why: Sequence[str] = (),
    location: dict[str, str] | None = None,
    backing: str | None = None,
) -> DataSet:
    return DataSet(
        id=dataset_id,
        kind=kind,
        resource=resource or dataset_id,
        location=dict(location or {}),
        ha=True,
        replication=Replication.REPLICATED,
        primary=primary,
        standbys=tuple(standbys),
        why=tuple(why),
        backing=backing,
    )


def shared(
    dataset_id: str,
    primary: str | None = "node1",
    *,
    kind: str = "filesystem",
    resource: str | None = None,
    why: Sequence[str] = (),
    location: dict[str, str] | None = None,
    backing: str | None = None,
) -> DataSet:
    return DataSet(
        id=dataset_id,
        kind=kind,
        resource=resource or dataset_id,
        location=dict(location or {}),
        ha=True,
        replication=Replication.SHARED,
        primary=primary,
        why=tuple(why),
        backing=backing,
    )


def local(
    dataset_id: str,
    node: str | None = "node1",
    *,
    kind: str = "filesystem",
    resource: str | None = None,
    why: Sequence[str] = (),
    location: dict[str, str] | None = None,
    backing: str | None = None,
) -> DataSet:
    return DataSet(
        id=dataset_id,
        kind=kind,
        resource=resource or dataset_id,
        location=dict(location or {}),
        ha=False,
        replication=Replication.LOCAL,
        primary=node,
        why=tuple(why),
        backing=backing,
    )


def tier(name: str, datasets: Sequence[str] = (), resources: Sequence[str] | None = None) -> Tier:
    """A tier whose resources default to its data sets' ids."""
    return Tier(name, tuple(datasets if resources is None else resources), tuple(datasets))


def app(name: str, *tiers: Tier) -> Application:
    """Tiers as given; when none declares ``depends_on``, each depends on the one
    listed before it (so list them bottom-up)."""
    if any(t.depends_on for t in tiers):
        return Application(name, tuple(tiers))
    chained = tuple(
        replace(t, depends_on=(tiers[i - 1].name,)) if i else t for i, t in enumerate(tiers)
    )
    return Application(name, chained)


def cluster(
    name: str = "c1",
    datasets: Sequence[DataSet] = (),
    applications: Sequence[Application] = (),
    nodes: Sequence[str | Node] = ("node1", "node2"),
) -> Cluster:
    """A cluster whose resources are the data sets' resources, placed on their primary."""
    resources: dict[str, Resource] = {}
    for ds in datasets:
        placement: dict[str, Role] = {}
        if ds.primary:
            placement[ds.primary] = (
                Role.PROMOTED if ds.replication is Replication.REPLICATED else Role.STARTED
            )
        for standby in ds.standbys:
            placement[standby] = Role.UNPROMOTED
        resources.setdefault(
            ds.resource, Resource(ds.resource, "ocf:heartbeat:Filesystem", None, placement)
        )
    return Cluster(
        name=name,
        manager=Manager.PACEMAKER,
        nodes=tuple(n if isinstance(n, Node) else Node(n, True) for n in nodes),
        resources=tuple(resources.values()),
        datasets=tuple(datasets),
        applications=tuple(applications),
    )


def topology(*clusters: Cluster) -> Topology:
    return Topology(tuple(clusters))


def web_cluster(name: str = "c1") -> Cluster:
    return cluster(
        name,
        datasets=(
            replicated(
                "fs_data",
                why=("Filesystem fs_data is mounted from DRBD r0, a promotable clone",),
                location={"device": "/dev/drbd0", "directory": "/srv/data", "fstype": "ext4"},
            ),
            shared(
                "pg_data",
                kind="postgresql",
                resource="pg_db",
                why=("pgsql pg_db keeps its data on Filesystem fs_pg, on shared storage",),
                location={"pgdata": "/srv/pg", "pgpassword": "s3cret"},
            ),
            local(
                "scratch",
                why=(
                    "Filesystem scratch: directory /scratch is on no replicated or shared device",
                ),
                location={"directory": "/scratch"},
            ),
        ),
        applications=(
            app(
                "grp_web",
                tier("storage", ["fs_data"]),
                tier("database", ["pg_data"], ["pg_db"]),
                tier("frontend", [], ["web_ip", "apache"]),
            ),
        ),
    )


def layered_cluster(name: str = "c1") -> Cluster:
    """DRBD ``drbd_r0`` under Filesystem ``fs_pg`` holding PostgreSQL ``pg``'s pgdata."""
    drbd_why = "drbd drbd_r0 runs in promotable clone ms_drbd_r0"
    fs_why = "Filesystem fs_pg is on DRBD resource r0 (drbd_r0)"
    return cluster(
        name,
        datasets=(
            replicated("drbd_r0", kind="drbd", why=(drbd_why,), location={"drbd_resource": "r0"}),
            replicated(
                "fs_pg",
                why=(fs_why, drbd_why),
                location={"device": "/dev/drbd0", "directory": "/srv/pg", "fstype": "xfs"},
                backing="drbd_r0",
            ),
            replicated(
                "pg",
                kind="postgresql",
                why=("pgsql pg: pgdata /srv/pg/data is on Filesystem fs_pg (/srv/pg)", fs_why),
                location={"pgdata": "/srv/pg/data", "pgport": "5432"},
                backing="fs_pg",
            ),
        ),
        applications=(
            app("g_pg", tier("storage", ["drbd_r0", "fs_pg"]), tier("database", ["pg"])),
        ),
    )
