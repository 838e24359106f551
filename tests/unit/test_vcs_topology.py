"""main.cf plus the cluster's state to a topology: data sets, roles, tiers, applications."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import FIXTURES

from haprotect.model.topology import Cluster, Manager, Replication, Role
from haprotect.model.topology_json import topology_to_json
from haprotect.sources import source_for
from haprotect.sources.base import DiscoverOptions
from haprotect.sources.vcs.source import VcsSource

ERP = FIXTURES / "vcs" / "erp" / "main.cf"


def discover(url: str) -> Cluster:
    (cluster,) = VcsSource().discover(url, DiscoverOptions()).clusters
    return cluster


@pytest.fixture(scope="module")
def erp() -> Cluster:
    return discover(f"vcs+file://{ERP}")


def test_the_registry_picks_vcs_for_its_schemes_and_main_cf_paths() -> None:
    assert source_for("vcs://").name == "vcs"
    assert source_for(f"vcs+file://{ERP}").name == "vcs"
    assert source_for(str(ERP)).name == "vcs"


def test_cluster_nodes_and_roles_from_the_saved_state(erp: Cluster) -> None:
    assert erp.name == "erp_prod" and erp.manager is Manager.VCS
    assert [(n.name, n.online) for n in erp.nodes] == [("erp1", True), ("erp2", True),
                                                        ("erp3", False)]  # fmt: skip
    placement = {r.id: r.placement for r in erp.resources}
    assert placement["ora_db"] == {"erp1": Role.STARTED}  # group ONLINE on erp1 (hastatus)
    assert placement["audit_db"] == {}  # hares: FAULTED on erp1 wins over the group's state
    assert placement["web"] == {"erp1": Role.STARTED, "erp2": Role.STARTED}  # parallel
    assert {r.id: r.parent for r in erp.resources}["ora_rvg"] == "erp_rep"


def test_vvr_replication_has_the_rvgprimary_system_as_primary(erp: Cluster) -> None:
    rvg = erp.dataset("ora_rvg")
    assert (rvg.kind, rvg.replication, rvg.primary, rvg.standbys) == (
        "vvr-rvg",
        Replication.REPLICATED,
        "erp1",
        (),
    )
    assert "RVGPrimary ora_rvg_pri is online (erp1)" in rvg.why[0]
    dg = erp.dataset("oradg_res")
    assert (dg.replication, dg.backing) == (Replication.REPLICATED, "ora_rvg")


def test_a_mount_on_the_replicated_disk_group_and_the_databases_on_it(erp: Cluster) -> None:
    mount = erp.dataset("oradata_mnt")
    assert mount.kind == "filesystem"
    assert mount.location == {"BlockDevice": "/dev/vx/dsk/oradg/oradata",
                              "MountPoint": "/oradata", "FSType": "vxfs"}  # fmt: skip
    assert (mount.replication, mount.primary, mount.backing) == (
        Replication.REPLICATED,
        "erp1",
        "oradg_res",
    )
    mysql = erp.dataset("audit_db")
    assert (mysql.kind, mysql.backing, mysql.primary) == ("mysql", "oradata_mnt", "erp1")
    assert any("not critical (Critical = 0)" in w for w in mysql.why)
    oracle = erp.dataset("ora_db")
    assert (oracle.kind, oracle.backing) == ("oracle", "oradata_mnt")
    assert oracle.location == {"Sid": "ERP", "Home": "/u01/app/oracle/product/19c",
                               "Owner": "oracle"}  # fmt: skip
    assert any("global (ClusterList: erp_prod, erp_dr)" in w for w in oracle.why)


def test_failover_standbys_skip_disabled_and_stopped_systems(erp: Cluster) -> None:
    report = erp.dataset("report_mnt")
    # SystemList erp3 = 0, erp2 = 1: erp3 is EXITED, erp2 has Enabled @erp2 = 0
    assert (report.ha, report.replication, report.primary, report.standbys) == (
        True,
        Replication.SHARED,
        None,
        (),
    )


def test_a_disabled_resource_is_not_ha(erp: Cluster) -> None:
    share = erp.dataset("web_share")
    assert (share.kind, share.ha) == ("nfs-export", False)
    assert any("Enabled = 0" in w for w in share.why)


def test_online_group_dependencies_are_tier_edges_offline_ones_are_not(erp: Cluster) -> None:
    apps = {a.name: a for a in erp.applications}
    assert set(apps) == {"erp_web", "erp_report"}
    tiers = {t.name: t for t in apps["erp_web"].tiers}
    assert [t.name for t in apps["erp_web"].tiers] == ["erp_rep", "erp_db", "erp_web"]
    assert tiers["erp_db"].depends_on == ("erp_rep",)
    assert tiers["erp_web"].depends_on == ("erp_db",)
    assert tiers["erp_db"].datasets == ("oradata_mnt", "ora_db", "audit_db")
    # erp_report requires erp_db offline local: anti-affinity, a separate application
    assert [t.depends_on for t in apps["erp_report"].tiers] == [()]
    kinds = {(d.source, d.target): d.kind for d in erp.dependencies}
    assert kinds[("ora_db", "oradata_mnt")] == "requires"
    assert kinds[("ora_rvg_pri", "ora_rvg")] == "group online local hard"
    assert kinds[("oradata_mnt", "oradg_res")] == "storage"
    assert not any(d.source == "report_mnt" for d in erp.dependencies)


def test_secrets_never_reach_the_topology(erp: Cluster) -> None:
    text = json.dumps(topology_to_json(VcsSource().discover(f"vcs+file://{ERP}",
                                                            DiscoverOptions())))  # fmt: skip
    for secret in ("dpmKpmOnmHomNmmNn", "c3VwZXJzZWNyZXQ=", "hunter2hash", "aXRzYXNlY3JldA=="):
        assert secret not in text


def test_without_saved_state_nothing_is_online_and_every_system_is_a_standby(
    tmp_path: Path,
) -> None:
    for name in ("main.cf", "types.cf", "vvrtypes.cf"):
        shutil.copy(ERP.parent / name, tmp_path / name)
    cluster = discover(f"vcs+file://{tmp_path / 'main.cf'}")
    assert not any(n.online for n in cluster.nodes)
    assert all(not r.placement for r in cluster.resources)
    assert cluster.dataset("report_mnt").standbys == ("erp3",)  # erp2 is still disabled
    assert cluster.dataset("ora_rvg").primary is None


def test_a_system_only_the_state_names_is_a_node_so_a_primary_is_always_one(
    tmp_path: Path,
) -> None:
    main = tmp_path / "main.cf"
    main.write_text("group g ( SystemList = { a = 0 } )\nMount m ( MountPoint = /m )\n")
    (tmp_path / "main.cf.hagrp").write_text("g State b |ONLINE|\nother State c |ONLINE|\n")
    cluster = discover(f"vcs+file://{main}")
    assert [n.name for n in cluster.nodes] == ["a", "b"]
    assert cluster.dataset("m").primary == "b"


def test_a_mount_on_a_logical_volume_lies_on_it_and_the_volume_on_its_group(
    tmp_path: Path,
) -> None:
    main = tmp_path / "main.cf"
    main.write_text(
        "group g ( SystemList = { a = 0, b = 1 } )\n"
        "Mount m ( MountPoint = /srv BlockDevice = /dev/mapper/datavg-lv01 FSType = xfs )\n"
        "LVMLogicalVolume lv ( LogicalVolume = lv01 VolumeGroup = datavg )\n"
        "LVMVolumeGroup vg ( VolumeGroup = datavg )\n"
        "Zpool pool ( PoolName = tank )\n"
        "Mount z ( MountPoint = /tank/x BlockDevice = tank/x FSType = zfs )\n"
    )
    cluster = discover(f"vcs+file://{main}")
    assert cluster.dataset("m").backing == "lv"
    assert cluster.dataset("lv").backing == "vg"
    assert cluster.dataset("z").backing == "pool"
    assert cluster.dataset("m").standbys == ("a", "b")
