"""The files mover's cut: a copy of the directory, in the location's cut_dir or in staging."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from haprotect.errors import HaprotectError
from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.model.plan import PlanItem
from haprotect.movers import CutRequest, get_mover
from haprotect.policy import default_rules, generate
from haprotect.testing.builders import app, cluster, shared, tier, topology
from haprotect.testing.plans import plan_with_movers

INVENTORY = Inventory((NodeAccess("node1", "127.0.0.1", True),), this_host="backup-host")


def item_of(data: Path, cut_dir: Path | None) -> PlanItem:
    location = {"directory": str(data)}
    if cut_dir is not None:
        location["cut_dir"] = str(cut_dir)
    topo = topology(
        cluster(
            "c1",
            datasets=(shared("data", location=location),),
            applications=(app("site", tier("storage", ["data"])),),
        )
    )
    now = datetime(2025, 3, 1, tzinfo=UTC)
    policy = generate(topo, default_rules(), source="file:///t.yaml", now=now)
    (item,) = plan_with_movers(policy, topo, INVENTORY, now).items
    return item


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("alpha\n")
    return tmp_path / "data"


def test_a_cut_in_cut_dir_is_read_instead_of_the_directory_and_discarded(
    data: Path, tmp_path: Path
) -> None:
    cut_dir = tmp_path / "cuts"
    item = item_of(data, cut_dir)
    request = CutRequest(item, INVENTORY, tmp_path / "staging", "haprotect-cut-1")
    cut = get_mover("files").prepare_cut(request)
    assert cut is not None and cut.released and cut.paused_at is None
    copy = Path(cut.location({"directory": str(data)})["directory"])
    assert copy.parent == cut_dir / "haprotect-cut-1"
    (data / "a.txt").write_text("after the cut\n")
    assert (copy / "a.txt").read_text() == "alpha\n"
    assert cut.details["cut"] in ("cp --reflink=auto -a", "copy")
    assert cut.discard() is None
    assert not os.path.lexists(cut_dir / "haprotect-cut-1")


def test_a_cut_dir_on_a_frozen_filesystem_gives_way_to_staging(data: Path, tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    assert os.stat(shm).st_dev != os.stat(tmp_path).st_dev  # a second filesystem to freeze
    cut_dir = shm / f"haprotect-test-cuts-{os.getpid()}"
    frozen = frozenset({os.stat(shm).st_dev})
    request = CutRequest(
        item_of(data, cut_dir), INVENTORY, tmp_path / "staging", "c", frozen=frozen
    )
    try:
        cut = get_mover("files").prepare_cut(request)
        assert cut is not None and cut.warning is not None and "freezes" in cut.warning
        assert cut.replaces["directory"].startswith(str(tmp_path / "staging"))
        assert not cut_dir.exists()
    finally:
        shutil.rmtree(cut_dir, ignore_errors=True)


def test_a_staging_directory_on_a_frozen_filesystem_is_refused(data: Path, tmp_path: Path) -> None:
    frozen = frozenset({os.stat(tmp_path).st_dev})
    request = CutRequest(item_of(data, None), INVENTORY, tmp_path / "staging", "c", frozen=frozen)
    with pytest.raises(HaprotectError, match="freezes"):
        get_mover("files").prepare_cut(request)
    assert not (tmp_path / "staging").exists()


def test_a_mover_with_nothing_to_cut_returns_no_handle(data: Path, tmp_path: Path) -> None:
    request = CutRequest(item_of(data, None), INVENTORY, tmp_path / "staging", "c")
    assert get_mover("block").prepare_cut(request) is None
    assert not get_mover("block").cut_needs_source(request.item)
