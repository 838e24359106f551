"""Prune: what stays restores byte for byte, space is freed, and damage stops it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from haprotect.repo import KdfParams, Repository
from haprotect.repo.blobs.packwriter import PackWriter
from haprotect.repo.errors import IntegrityError, PruneRefused, RepositoryError
from haprotect.repo.format.index import INDEX_PREFIX
from haprotect.repo.format.pack import BlobType
from haprotect.repo.maintenance.prune import PruneOptions, stored_packs
from haprotect.repo.maintenance.retention import KeepPolicy
from haprotect.storage.base import BlobInfo, stage
from haprotect.storage.local import TEMP_SUFFIX, LocalStore
from haprotect.storage.memory import MemoryStore
from haprotect.testing.repo import MiB, describe

FAST_KDF = KdfParams(n=1 << 10)


def new_repo(store: MemoryStore) -> Repository:
    return Repository.init(store, "pw", kdf=FAST_KDF, pack_size=1 * MiB)


def restored(repo: Repository, snapshot_id: str, target: Path, src: Path) -> Path:
    repo.restore(snapshot_id, target)
    return target / str(src).lstrip("/")


def pack_bytes(store: MemoryStore) -> int:
    return sum(stored_packs(store).values())


def everything(store: MemoryStore) -> dict[str, bytes]:
    return {b.key: store.get(b.key) for b in store.list() if not b.key.startswith("locks/")}


def test_prune_frees_space_and_what_stays_restores_byte_for_byte(tmp_path: Path) -> None:
    store = MemoryStore()
    repo = new_repo(store)
    rng = random.Random(7)
    src = tmp_path / "src"
    src.mkdir()
    expected = {}
    for day in range(4):
        (src / f"big{day}").write_bytes(rng.randbytes(2 * MiB))
        (src / f"small{day}").write_bytes(rng.randbytes(5000))
        if day:
            (src / f"big{day - 1}").unlink()
        snapshot = repo.backup([src])
        expected[snapshot.id] = describe(src)
    before = pack_bytes(store)
    groups = repo.apply_retention(KeepPolicy(last=2))
    forgotten = [s.id for g in groups for s in g.removed]
    assert len(forgotten) == 2
    report = repo.prune()
    after = pack_bytes(store)
    assert report.bytes_freed == before - after
    assert before - after >= 4 * MiB * 0.95, "big0 and big1 are gone"
    assert report.packs_deleted >= 4 and report.snapshots == 2
    for snapshot in repo.snapshots():
        out = restored(repo, snapshot.id, tmp_path / snapshot.short_id, src)
        assert describe(out) == expected[snapshot.id]
    check = repo.check(read_data=True)
    assert check.ok and check.findings == ()
    assert len(list(store.list(INDEX_PREFIX))) == 1, "the index is consolidated"
    fresh = Repository.open(store, "pw")
    assert len(fresh.index) == len(repo.index)


def test_mostly_unused_packs_are_repacked(tmp_path: Path) -> None:
    store = MemoryStore()
    repo = new_repo(store)
    rng = random.Random(3)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"f{i:02d}").write_bytes(rng.randbytes(10_000))
    first = repo.backup([src])
    for i in range(30):
        (src / f"f{i:02d}").unlink()
    second = repo.backup([src])
    repo.forget(first.id)
    before = pack_bytes(store)
    dry = repo.prune(PruneOptions(dry_run=True))
    assert dry.dry_run and dry.packs_repacked >= 1
    assert pack_bytes(store) == before, "a dry run changes nothing"
    report = repo.prune(PruneOptions(repack_threshold=0.5))
    assert report.packs_repacked >= 1 and report.packs_written >= 1
    assert pack_bytes(store) < before - 250_000, "the 30 deleted files' blobs are gone"
    out = restored(repo, second.id, tmp_path / "out", src)
    assert describe(out) == describe(src)
    assert repo.check(read_data=True).ok


def test_a_high_threshold_keeps_partly_used_packs(tmp_path: Path) -> None:
    store = MemoryStore()
    repo = new_repo(store)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(10):
        (src / f"f{i}").write_bytes(random.Random(i).randbytes(10_000))
    first = repo.backup([src])
    (src / "f0").unlink()
    repo.backup([src])
    repo.forget(first.id)
    report = repo.prune(PruneOptions(repack_threshold=1.0))
    assert report.packs_repacked == 0 and report.packs_written == 0
    assert repo.check(read_data=True).ok


class IndexListedBefore:
    """A store as a concurrent writer sees it: its listing of ``index/`` is the one it
    took before another writer's backup ended (injected; everything else is the store)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._seen = {b.key for b in store.list(INDEX_PREFIX)}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        for info in self._store.list(prefix):
            if not info.key.startswith(INDEX_PREFIX) or info.key in self._seen:
                yield info


def test_duplicates_from_concurrent_backups_are_dropped(tmp_path: Path) -> None:
    store = MemoryStore()
    new_repo(store)
    src = tmp_path / "src"
    src.mkdir()
    (src / "same").write_bytes(random.Random(1).randbytes(3 * MiB))
    one = Repository.open(store, "pw")
    two = Repository.open(IndexListedBefore(store), "pw")
    a = one.backup([src])
    b = two.backup([src], use_parent=False)  # its index predates a's: stores everything again
    assert b.stats.bytes_added > 3 * MiB * 0.9
    before = pack_bytes(store)
    report = one.prune()
    assert before - pack_bytes(store) > 3 * MiB * 0.9, "one copy of the duplicated data is freed"
    assert report.chunks_used > 0
    for snapshot in (a, b):
        out = restored(one, snapshot.id, tmp_path / snapshot.short_id, src)
        assert describe(out) == describe(src)
    assert one.check(read_data=True).ok


def test_unindexed_packs_are_removed(tmp_path: Path) -> None:
    store = MemoryStore()
    repo = new_repo(store)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"data" * 1000)
    snapshot = repo.backup([src])
    writer = PackWriter(repo._key, BlobType.DATA, MiB, MiB)
    writer.add(b"\x01" * 32, b"left by a killed backup", 23, 0)
    orphan = writer.finish()
    store.put(orphan.info.key, orphan.data)
    check = repo.check()
    assert check.ok and [f.kind for f in check.findings] == ["orphan-pack"]
    report = repo.prune()
    assert report.orphan_packs == 1
    assert not store.exists(orphan.info.key)
    assert repo.check().findings == ()
    out = restored(repo, snapshot.id, tmp_path / "out", src)
    assert describe(out) == describe(src)


def test_nothing_to_do_changes_nothing(tmp_path: Path) -> None:
    store = MemoryStore()
    repo = new_repo(store)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x" * 10_000)
    repo.backup([src])
    repo.prune()
    before = everything(store)
    report = repo.prune()
    assert report.bytes_freed == 0 and report.index_blobs_written == 0
    assert everything(store) == before


def damaged(tmp_path: Path) -> tuple[MemoryStore, Repository]:
    store = MemoryStore()
    repo = new_repo(store)
    src = tmp_path / "src"
    src.mkdir()
    (src / "keep").write_bytes(random.Random(5).randbytes(2 * MiB))
    repo.backup([src])
    (src / "gone").write_bytes(random.Random(6).randbytes(2 * MiB))
    old = repo.backup([src])
    repo.forget(old.id)
    return store, repo


def test_a_missing_pack_that_is_needed_stops_prune_before_it_deletes_anything(
    tmp_path: Path,
) -> None:
    store, repo = damaged(tmp_path)
    needed = next(iter(repo.snapshots()[0].tree))
    location = repo.index.lookup(bytes.fromhex(needed))
    assert location is not None
    store.delete(location.pack.key)
    before = everything(store)
    with pytest.raises(PruneRefused, match="deletes nothing") as caught:
        repo.prune()
    assert "check" in (caught.value.hint or "")
    assert everything(store) == before


def test_a_damaged_index_blob_stops_prune(tmp_path: Path) -> None:
    store, repo = damaged(tmp_path)
    name = sorted(b.key for b in store.list(INDEX_PREFIX))[0]
    store.put(name, store.get(name)[:-10])
    before = everything(store)
    with pytest.raises(IntegrityError) as caught:
        repo.prune()
    assert isinstance(caught.value, RepositoryError)
    assert "check" in (caught.value.hint or "")
    assert everything(store) == before


def test_a_blob_that_fails_verification_while_repacking_stops_prune(tmp_path: Path) -> None:
    store = MemoryStore()
    repo = new_repo(store)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"f{i:02d}").write_bytes(random.Random(i).randbytes(10_000))
    first = repo.backup([src])
    for i in range(15):
        (src / f"f{i:02d}").unlink()
    repo.backup([src])
    repo.forget(first.id)
    location = repo.index.lookup(bytes.fromhex(repo.snapshots()[0].tree[0]))
    assert location is not None
    # corrupt a kept file's blob in the mixed data pack: find it through the tree
    node = next(n for n in repo.nodes(repo.snapshots()[0]) if n.path.endswith("f19"))
    chunk = node.content[0]
    assert isinstance(chunk, bytes)
    where = repo.index.lookup(chunk)
    assert where is not None
    blob = bytearray(store.get(where.pack.key))
    blob[where.offset + 20] ^= 0x01
    store.put(where.pack.key, bytes(blob))
    indexed_before = sorted(b.key for b in store.list(INDEX_PREFIX))
    with pytest.raises(PruneRefused, match="failed authentication"):
        repo.prune(PruneOptions(repack_threshold=0.1))
    assert store.exists(where.pack.key)
    assert sorted(b.key for b in store.list(INDEX_PREFIX)) == indexed_before


def test_prune_removes_what_killed_writers_left_half_written(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "repo")
    repo = Repository.init(store, "pw", kdf=FAST_KDF, pack_size=1 * MiB)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(random.Random(1).randbytes(300_000))
    snapshot = repo.backup([src])
    staged = stage(store, "data")  # a pack being written when its writer was killed
    assert staged is not None
    leftovers = [p for p in (tmp_path / "repo").rglob("*") if p.name.endswith(TEMP_SUFFIX)]
    assert len(leftovers) == 1
    report = repo.prune(PruneOptions())
    assert report.leftovers_removed == 1
    assert not any(p.name.endswith(TEMP_SUFFIX) for p in (tmp_path / "repo").rglob("*"))
    out = restored(repo, snapshot.id, tmp_path / "out", src)
    assert (out / "a").read_bytes() == (src / "a").read_bytes()
