"""Backup and restore of awkward trees, byte for byte and mode for mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from haprotect.model.progress import Phase, ProgressEvent
from haprotect.model.snapshot import NodeType
from haprotect.repo import KdfParams, Repository
from haprotect.repo import archiver as archiver_module
from haprotect.storage.memory import MemoryStore
from haprotect.testing.repo import ODD_NAME, SPARSE_SIZE, MiB, describe, make_awkward_tree

FAST_KDF = KdfParams(n=1 << 10)


@pytest.fixture
def repo() -> Repository:
    return Repository.init(MemoryStore(), "secret", kdf=FAST_KDF, pack_size=4 * MiB)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    make_awkward_tree(root)
    return root


def restored(target: Path, source: Path) -> Path:
    return target / str(source).lstrip("/")


def test_round_trip_of_an_awkward_tree(repo: Repository, tree: Path, tmp_path: Path) -> None:
    snapshot = repo.backup([tree], tags=["t1"], metadata={"tier": "db", "app": {"name": "pg"}})
    assert snapshot.stats.errors == 0
    assert snapshot.stats.bytes_read < 20 * MiB, "holes of the sparse file are not read"
    target = tmp_path / "out"
    stats = repo.restore(snapshot.id, target)
    assert stats.errors == ()
    out = restored(target, tree)
    assert describe(out) == describe(tree)
    sparse = os.stat(out / "sparse.img")
    assert sparse.st_size == SPARSE_SIZE
    assert sparse.st_blocks * 512 < 32 * MiB, "the restored sparse file stays sparse"
    a, b = os.stat(out / "random.bin"), os.stat(out / "hardlink.bin")
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 2)
    assert os.path.isdir(os.path.join(os.fsencode(out), ODD_NAME))


def test_snapshot_records_metadata_tags_and_node_details(repo: Repository, tree: Path) -> None:
    snapshot = repo.backup([tree], tags=["nightly"], metadata={"tier": "db"}, host="node1")
    (listed,) = repo.snapshots()
    assert listed == snapshot
    assert listed.host == "node1" and listed.tags == ("nightly",)
    assert listed.metadata == {"tier": "db"}
    assert listed.paths == (str(tree),)
    nodes = {n.path: n for n in repo.nodes(listed)}
    rel = str(tree).lstrip("/")
    assert nodes[rel.rsplit("/", 1)[0]].type is NodeType.DIR, "ancestors are recorded"
    assert nodes[f"{rel}/dangling"].target == "/nonexistent/target"
    assert nodes[f"{rel}/fifo"].type is NodeType.FIFO
    assert nodes[f"{rel}/exec.sh"].mode == 0o4755
    assert nodes[f"{rel}/text.txt"].mtime_ns == 1_600_000_000_123_456_789
    assert nodes[f"{rel}/random.bin"].hardlink == nodes[f"{rel}/hardlink.bin"].hardlink
    odd = os.fsdecode(os.fsencode(rel) + b"/" + ODD_NAME)
    assert odd in nodes
    sparse = nodes[f"{rel}/sparse.img"]
    assert any(isinstance(e, int) and e > 100 * MiB for e in sparse.content)


def test_restore_of_a_subset(repo: Repository, tree: Path, tmp_path: Path) -> None:
    snapshot = repo.backup([tree])
    target = tmp_path / "out"
    rel = str(tree).lstrip("/")
    repo.restore(snapshot.id[:10], target, include=[f"/{rel}/readonly", f"{rel}/text.txt"])
    out = restored(target, tree)
    assert sorted(os.listdir(out)) == ["readonly", "text.txt"]
    assert (out / "readonly" / "inside").read_text() == "x"
    assert os.stat(out / "readonly").st_mode & 0o777 == 0o555


def test_restore_over_existing_files_replaces_them(
    repo: Repository, tree: Path, tmp_path: Path
) -> None:
    snapshot = repo.backup([tree])
    target = tmp_path / "out"
    repo.restore(snapshot.id, target)
    out = restored(target, tree)
    os.chmod(out / "readonly", 0o755)
    (out / "text.txt").write_text("changed")
    repo.restore(snapshot.id, target)
    assert describe(out) == describe(tree)


def test_owners_are_restored_as_root(repo: Repository, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("restoring owners needs root")
    src = tmp_path / "src"
    src.mkdir()
    (src / "owned").write_text("x")
    os.chown(src / "owned", 54321, 54322)
    os.symlink("owned", src / "link")
    os.chown(src / "link", 54323, 54324, follow_symlinks=False)
    snapshot = repo.backup([src])
    repo.restore(snapshot.id, tmp_path / "out")
    out = restored(tmp_path / "out", src)
    st = os.stat(out / "owned")
    assert (st.st_uid, st.st_gid) == (54321, 54322)
    st = os.lstat(out / "link")
    assert (st.st_uid, st.st_gid) == (54323, 54324)


def test_progress_events_are_reported(repo: Repository, tree: Path, tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    snapshot = repo.backup([tree], on_progress=events.append)
    assert events and events[-1].finished and events[-1].phase is Phase.BACKUP
    assert events[-1].files_done == snapshot.stats.files_new
    restore_events: list[ProgressEvent] = []
    repo.restore(snapshot.id, tmp_path / "out", on_progress=restore_events.append)
    last = restore_events[-1]
    assert last.finished and last.files_done == last.files_total
    assert last.bytes_total == snapshot.stats.bytes_total


def test_unreadable_file_is_recorded_and_the_backup_goes_on(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok").write_text("fine")
    (src / "secret").write_text("x")
    real = archiver_module.open_for_reading

    def refuse_secret(path: bytes) -> int:
        if path.endswith(b"/secret"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(archiver_module, "open_for_reading", refuse_secret)
    snapshot = repo.backup([src])
    assert [(e.path.rsplit("/", 1)[1], e.message) for e in snapshot.errors] == [
        ("secret", "Permission denied")
    ]
    assert snapshot.stats.files_new == 1 and snapshot.stats.errors == 1
    names = [n.name for n in repo.nodes(snapshot)]
    assert "ok" in names and "secret" not in names


def test_missing_path_is_recorded_as_an_error(repo: Repository, tmp_path: Path) -> None:
    (tmp_path / "there").write_text("x")
    snapshot = repo.backup([tmp_path / "there", tmp_path / "missing"])
    assert [e.path for e in snapshot.errors] == [str(tmp_path / "missing").lstrip("/")]
    assert snapshot.stats.files_new == 1


def test_single_file_and_explicit_parent(repo: Repository, tmp_path: Path) -> None:
    single = tmp_path / "one.txt"
    single.write_text("one")
    first = repo.backup([single])
    second = repo.backup([single], parent=first.id[:12])
    assert second.parent == first.id and second.stats.files_unchanged == 1
    repo.restore(second.id, tmp_path / "out")
    assert restored(tmp_path / "out", single).read_text() == "one"
