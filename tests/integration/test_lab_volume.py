"""The lab on a volume of its own: a loop-mounted XFS image, cut by reflink.

Needs root (mount) and xfsprogs; under CI=true they must be there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import require_component
from tests.integration.conftest import require_postgres

from haprotect.engine import ListReporter, list_sets, run_backup, run_restore
from haprotect.engine.backup import RunOptions
from haprotect.engine.planning import plan_backup
from haprotect.errors import ComponentError
from haprotect.lab import Lab
from haprotect.lab.volume import ensure, mount_point, release, resolve_auto
from haprotect.model.result import Status
from haprotect.movers.filecut import copy_tree
from haprotect.movers.postgres import stop_restored
from haprotect.plan import load_inventory, plan_restore
from haprotect.policy import default_rules, generate
from haprotect.repo import KdfParams, Repository
from haprotect.sources import DiscoverOptions, discover
from haprotect.storage import open_store

FS = "fs_shared"
MIB = 1 << 20


def filesystem_of(path: Path) -> str:
    """The type of the filesystem mounted exactly at ``path``."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if Path(fields[1].replace("\\040", " ")) == path:
            return fields[2]
    return ""


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_postgres()
    require_mounting()
    root = Path(tempfile.mkdtemp(prefix="hp-vol-"))
    root.chmod(0o755)
    made = Lab(root / "lab", volume="xfs")
    try:
        made.up()
        yield made
    finally:
        made.down(purge=True)
        shutil.rmtree(root, ignore_errors=True)


def test_the_shared_directory_lies_on_its_own_xfs_volume(lab: Lab) -> None:
    volume = mount_point(lab.root)
    assert os.path.ismount(volume) and filesystem_of(volume) == "xfs"
    assert lab.shared_dir.parent == volume and lab.uploads_dir.is_dir()
    inventory = load_inventory(lab.inventory_path)
    location = inventory.location(lab.primary, "haprotect-lab", FS, {})
    assert location["cut_dir"] == str(volume / "cuts")


def test_a_cut_on_the_volume_shares_blocks_instead_of_copying(lab: Lab) -> None:
    big = lab.uploads_dir / "big.bin"
    big.write_bytes(os.urandom(64 * MIB))
    target = mount_point(lab.root) / "cuts" / "probe"
    try:
        os.sync()
        before = free_bytes(lab.shared_dir)
        method = copy_tree(lab.shared_dir, target)
        os.sync()
        used = before - free_bytes(lab.shared_dir)
        assert method == "cp --reflink=auto -a"
        assert (target / "uploads" / "big.bin").read_bytes() == big.read_bytes()
        assert used < 8 * MIB, f"the cut took {used / MIB:.1f} MiB for 64 MiB of data"
    finally:
        shutil.rmtree(target, ignore_errors=True)
        big.unlink()


def test_a_quiesced_backup_cuts_on_the_volume_and_leaves_no_cut_behind(lab: Lab) -> None:
    root = lab.root.parent
    load = lab.load(seconds=1.0, rate=10, upload_every=2)
    assert load.uploads >= 2 and not load.failures
    source = f"pacemaker+file://{lab.cib_path}"
    topology = discover(source, DiscoverOptions(use_cli=False))
    policy = generate(topology, default_rules(), source=source, now=datetime.now(UTC))
    plan = plan_backup(policy, load_inventory(lab.inventory_path), use_cli=False)
    repo = Repository.init(open_store(f"file://{root}/repo"), "pw", kdf=KdfParams(n=1 << 10))
    result = run_backup(plan, repo, ListReporter(), RunOptions(staging=root / "staging"))
    assert result.status is Status.COMPLETED, result.issues
    snapshot_set = list_sets(repo)[-1]
    item = next(i for i in snapshot_set.items if i.dataset == FS)
    block: Any = repo.snapshot(item.snapshot_id).metadata["set"]
    assert block["quiesce"]["cuts"][f"haprotect-lab/{FS}"]["cut"] == "cp --reflink=auto -a"
    assert sorted((mount_point(lab.root) / "cuts").rglob("*")) == []

    out = root / "restored"
    restored = run_restore(
        plan_restore(snapshot_set, load_inventory(lab.inventory_path), to=out),
        repo,
        ListReporter(),
    )
    stop_restored(out / "database" / "pgsql_shop")
    assert restored.status is Status.COMPLETED, [i.message for i in restored.items]
    names = {p.name for p in (out / "storage" / FS / "uploads").iterdir()}
    assert names == {p.name for p in lab.uploads_dir.iterdir()}


def test_down_keeps_the_volume_and_up_mounts_it_again_after_a_reboot(lab: Lab) -> None:
    marker = lab.uploads_dir / "marker.txt"
    marker.write_text("still here\n")
    lab.down()
    assert os.path.ismount(mount_point(lab.root))  # stopped services, disk attached
    assert marker.read_text() == "still here\n"
    release(lab.root)  # as a reboot would
    assert not marker.exists()  # it lives on the volume, not under the mount point
    Lab(lab.root).up()  # an existing lab keeps its volume without being told
    assert os.path.ismount(mount_point(lab.root))
    assert marker.read_text() == "still here\n"


def require_mounting() -> None:
    require_component("root (to loop-mount the lab's volume)", os.geteuid() == 0, "run as root")
    require_component(
        "mkfs.xfs", shutil.which("mkfs.xfs") is not None, "scripts/bootstrap installs xfsprogs"
    )


def test_auto_makes_a_volume_where_it_can(tmp_path: Path) -> None:
    require_mounting()
    root = tmp_path / "auto"
    root.mkdir()
    kind, said = resolve_auto(root)
    try:
        assert kind == "xfs" and "XFS volume" in said
        assert filesystem_of(mount_point(root)) == "xfs"
    finally:
        release(root)


def test_a_failed_mkfs_leaves_nothing_that_blocks_the_next_try(tmp_path: Path) -> None:
    require_mounting()
    with pytest.raises(ComponentError, match=r"mkfs\.xfs"):
        ensure(tmp_path, "xfs", size=16 << 20)  # too small for XFS
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    try:
        assert ensure(tmp_path, "xfs")
        assert filesystem_of(mount_point(tmp_path)) == "xfs"
    finally:
        release(tmp_path)
