"""The block mover: an image file, and a real block device (a loop device) when root."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import require_component

from haprotect.engine import ListReporter, list_sets, run_backup, run_restore
from haprotect.engine.backup import RunOptions
from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.model.result import Status
from haprotect.model.topology import DataSet, Replication
from haprotect.movers import mover_name_for
from haprotect.movers.blockdev import stage_device
from haprotect.plan import build, plan_restore
from haprotect.policy import default_rules, generate
from haprotect.repo import KdfParams, Repository
from haprotect.storage.memory import MemoryStore
from haprotect.testing.builders import app, cluster, tier, topology

FAST_KDF = KdfParams(n=1 << 10)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
INVENTORY = Inventory((NodeAccess("node1", "node1", True),), this_host="backup-host")
MiB = 1 << 20


def disk(device: Path) -> DataSet:
    return DataSet(
        id="disk",
        kind="block",
        resource="disk",
        location={"device": str(device)},
        ha=True,
        replication=Replication.SHARED,
        primary="node1",
    )


def write_image(path: Path) -> str:
    """A 24 MiB image: random blocks with holes between them; its SHA-256."""
    with path.open("wb") as out:
        out.truncate(24 * MiB)
        for offset in (0, 5 * MiB + 4096, 23 * MiB):
            out.seek(offset)
            out.write(os.urandom(MiB))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def back_up_and_restore(device: Path, tmp_path: Path, target: Path | None) -> tuple[Status, Path]:
    topo = topology(
        cluster(
            "c1", datasets=(disk(device),), applications=(app("vm", tier("storage", ["disk"])),)
        )
    )
    policy = generate(topo, default_rules(), source="file:///c1.yaml", now=NOW)
    plan = build(policy, topo, INVENTORY, mover_for=mover_name_for, now=NOW)
    assert plan.items[0].mover == "block"
    repo = Repository.init(MemoryStore("memory://block/"), "pw", kdf=FAST_KDF)
    backed = run_backup(plan, repo, ListReporter(), RunOptions(staging=tmp_path / "staging"))
    assert backed.status is Status.COMPLETED, backed.items
    (snapshot_set,) = list_sets(repo)
    out = tmp_path / "out"
    restore_plan = plan_restore(snapshot_set, INVENTORY, to=None if target else out)
    if target is not None:
        restore_plan = replace(
            restore_plan,
            overwrite=True,
            tiers=tuple(
                replace(t, items=tuple(replace(i, target=str(target)) for i in t.items))
                for t in restore_plan.tiers
            ),
        )
    restored = run_restore(restore_plan, repo, ListReporter())
    assert restored.items[0].status.value == "ok", restored.items[0].message
    return restored.status, Path(restore_plan.items[0].target)


def test_an_image_file_comes_back_byte_for_byte_and_sparse(tmp_path: Path) -> None:
    image = tmp_path / "vm.img"
    digest = write_image(image)
    status, restored = back_up_and_restore(image, tmp_path, None)
    assert status is Status.COMPLETED
    assert restored == tmp_path / "out" / "storage" / "disk"
    assert hashlib.sha256(restored.read_bytes()).hexdigest() == digest
    assert restored.stat().st_blocks * 512 < 8 * MiB  # the holes stayed holes


def test_staging_a_device_keeps_zeros_as_holes_and_hashes_everything(tmp_path: Path) -> None:
    image = tmp_path / "dev.img"
    digest = write_image(image)
    staged = tmp_path / "staged.img"
    size, staged_digest = stage_device(image, staged)
    assert (size, staged_digest) == (24 * MiB, digest)
    assert staged.read_bytes() == image.read_bytes()
    assert staged.stat().st_blocks * 512 <= 4 * MiB


@pytest.fixture
def loop_devices(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """Two loop devices over 24 MiB images (the first with data), or a skip."""
    losetup = shutil.which("losetup")
    require_component("root (for loop devices)", os.geteuid() == 0, "run the tests as root")
    require_component("losetup", losetup is not None, "util-linux")
    assert losetup is not None
    source, blank = tmp_path / "source.img", tmp_path / "blank.img"
    digest = write_image(source)
    with blank.open("wb") as out:
        out.write(b"\xff" * (24 * MiB))
    attached: list[str] = []
    try:
        for image in (source, blank):
            found = subprocess.run(
                [losetup, "--find", "--show", str(image)],
                check=False,
                capture_output=True,
                text=True,
            )
            require_component(
                "a free loop device", found.returncode == 0, found.stderr.strip() or "losetup -f"
            )
            attached.append(found.stdout.strip())
        yield Path(attached[0]), Path(attached[1]), digest
    finally:
        for device in attached:
            subprocess.run([losetup, "-d", device], check=False)


def test_a_block_device_is_backed_up_by_content_and_restored_onto_a_device(
    loop_devices: tuple[Path, Path, str], tmp_path: Path
) -> None:
    source, blank, digest = loop_devices
    status, restored = back_up_and_restore(source, tmp_path, blank)
    assert status is Status.COMPLETED
    with restored.open("rb") as device:
        assert hashlib.sha256(device.read(24 * MiB)).hexdigest() == digest
