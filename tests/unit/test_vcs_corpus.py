"""Every main.cf and fragment of the shared corpus is discovered or refused in one line.

The complete one (ksp-auxlab_poc.main.cf) yields its shared Mount as HA data
with the failover group's systems, and the CVM/CFS parallel group as the
storage tier below it; the saved outputs give the roles where they apply.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.golden_files import check_golden

from haprotect.errors import HaprotectError
from haprotect.model.topology import Cluster, Layer, Replication, Role, Topology
from haprotect.model.topology_json import topology_to_json
from haprotect.sources.base import DiscoverOptions
from haprotect.sources.vcs.agents import layer_of
from haprotect.sources.vcs.source import VcsSource


def discover(path: Path) -> Cluster:
    (cluster,) = VcsSource().discover(f"vcs+file://{path}", DiscoverOptions()).clusters
    return cluster


def test_every_corpus_file_is_discovered_or_refused_in_one_line(corpus: Path) -> None:
    files = sorted((corpus / "vcs").glob("*.cf"))
    assert len(files) >= 4
    outcomes: dict[str, str] = {}
    for path in files:
        try:
            cluster = discover(path)
        except HaprotectError as exc:
            assert "\n" not in exc.message and exc.message.startswith(str(path))
            outcomes[path.name] = "refused"
        else:
            assert cluster.resources, path
            outcomes[path.name] = "discovered"
    assert outcomes == dict.fromkeys(outcomes, "discovered")


def test_the_complete_main_cf_gives_the_shared_mount_and_the_cvm_storage_tier(
    corpus: Path,
) -> None:
    cluster = discover(corpus / "vcs" / "ksp-auxlab_poc.main.cf")
    assert cluster.name == "auxlab_poc"
    assert [n.name for n in cluster.nodes] == ["node01", "node02"]
    (mount,) = cluster.datasets
    assert (mount.id, mount.kind, mount.ha, mount.replication) == (
        "infa_mount",
        "filesystem",
        True,
        Replication.SHARED,
    )
    assert mount.location["MountPoint"] == "/infa_shared"
    assert (
        "disk group sharedg is a shared (CVM) disk group that group cvm activates"
        in (mount.why[-1])
    )
    assert (mount.primary, mount.standbys) == (None, ("node01", "node02"))
    (app,) = cluster.applications
    cvm, infa = app.tiers
    assert (cvm.name, infa.name) == ("cvm", "infa_sg")
    assert set(cvm.resources) == {"vxfsckd", "cvm_clus", "cvm_vxconfigd", "vxattachd"}
    types = {r.id: r.agent for r in cluster.resources}
    assert {layer_of(types[r]) for r in cvm.resources if types[r] != "ProcessOnOnly"} == {
        Layer.STORAGE
    }
    assert infa.depends_on == ("cvm",) and infa.datasets == ("infa_mount",)
    assert app.name == "infa_sg"


def test_roles_from_the_saved_cli_outputs_beside_the_main_cf(corpus: Path, tmp_path: Path) -> None:
    main = tmp_path / "main.cf"
    shutil.copy(corpus / "vcs" / "ksp-auxlab_poc.main.cf", main)
    shutil.copy(corpus / "vcs" / "ksp-cli-outputs.txt", tmp_path / "main.cf.status")
    cluster = discover(main)
    assert all(n.online for n in cluster.nodes)
    placement = {r.id: r.placement for r in cluster.resources}
    both = {"node01": Role.STARTED, "node02": Role.STARTED}
    assert placement["cvm_clus"] == both and placement["vxfsckd"] == both
    assert placement["infa_mount"] == {}  # OFFLINE|STATE UNKNOWN on both
    assert cluster.dataset("infa_mount").standbys == ("node01", "node02")


def test_hastatus_summary_gives_the_failover_group_its_system(corpus: Path, tmp_path: Path) -> None:
    main = tmp_path / "ClusterService.cf"
    shutil.copy(corpus / "vcs" / "jnr-ClusterService.fragment.cf", main)
    shutil.copy(corpus / "vcs" / "jnr-hastatus-sum.txt", tmp_path / "ClusterService.cf.hastatus")
    cluster = discover(main)
    assert cluster.name == "ClusterService"
    assert {r.id: r.placement for r in cluster.resources} == {
        "webip": {"verclus01": Role.STARTED},
        "csgnic": {"verclus01": Role.STARTED},
    }
    assert [(n.name, n.online) for n in cluster.nodes] == [("verclus01", True),
                                                            ("verclus02", True)]  # fmt: skip


@pytest.mark.parametrize("cut", [40, 200, 700, 1500])
def test_a_corpus_main_cf_cut_short_is_refused_in_one_line(
    corpus: Path, tmp_path: Path, cut: int
) -> None:
    main = tmp_path / "main.cf"
    text = (corpus / "vcs" / "ksp-auxlab_poc.main.cf").read_text()
    main.write_text(text[:cut] + "\n(")
    with pytest.raises(HaprotectError) as caught:
        discover(main)
    assert caught.value.message.startswith(f"{main}:") and "\n" not in caught.value.message


def test_the_complete_main_cf_matches_golden(corpus: Path) -> None:
    cluster = discover(corpus / "vcs" / "ksp-auxlab_poc.main.cf")
    check_golden("vcs-auxlab_poc.topology.json", topology_to_json(Topology((cluster,))))
