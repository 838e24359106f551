"""``Repository.copy_to``: snapshots copied into another repository, only missing chunks stored.

The two repositories differ in passphrase, key (so in every chunk id) and
chunker parameters; copies restore byte for byte, pass ``check
--read-data``, keep their metadata, and a second copy adds nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from haprotect.model.progress import Phase, ProgressEvent
from haprotect.model.snapshot import Snapshot
from haprotect.repo import ChunkerParams, KdfParams, Repository
from haprotect.repo.copy.copier import COPIED_FROM
from haprotect.repo.errors import IntegrityError
from haprotect.repo.format.pack import BlobType, PackEntry
from haprotect.storage.base import BlobStore, PermanentStorageError
from haprotect.storage.local import LocalStore
from haprotect.storage.wrappers import StoreWrapper
from haprotect.testing.repo import MiB, describe, make_awkward_tree

R = TypeVar("R")
KDF = KdfParams(n=1 << 10)
SMALL_CHUNKS = ChunkerParams(min_size=16 * 1024, avg_size=32 * 1024, max_size=128 * 1024)


def make_repo(path: Path, passphrase: str, chunker: ChunkerParams | None = None) -> Repository:
    return Repository.init(
        LocalStore(str(path)), passphrase, kdf=KDF, chunker=chunker, pack_size=512 * 1024
    )


@pytest.fixture
def source(tmp_path: Path) -> Repository:
    return make_repo(tmp_path / "source", "source-pw")


@pytest.fixture
def target(tmp_path: Path) -> Repository:
    return make_repo(tmp_path / "target", "target-pw", SMALL_CHUNKS)


def fill(root: Path, seed: int, files: int = 12) -> None:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"f{seed}-{i}").write_bytes(rng.randbytes(rng.randint(0, 200_000)))
    (root / f"big{seed}").write_bytes(rng.randbytes(3 * MiB + seed))


def assert_restores(repo: Repository, snapshot_id: str, src: Path, out: Path) -> None:
    repo.restore(snapshot_id, out)
    assert describe(out / str(src).lstrip("/")) == describe(src)


def assert_checks(repo: Repository) -> None:
    report = repo.check(read_data=True)
    assert report.ok, [f.message for f in report.errors]


def test_a_copy_restores_byte_for_byte_and_keeps_its_metadata(
    source: Repository, target: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    make_awkward_tree(src)
    original = source.backup(
        [src], tags=["nightly"], metadata={"application": "shop", "dataset": "orders"}
    )
    events: list[ProgressEvent] = []
    report = source.copy_to(target, on_progress=events.append)
    [done] = report.snapshots
    assert done.source == original.id and not done.already and done.target is not None
    copy = target.snapshot(done.target)
    assert copy.metadata == {**original.metadata, COPIED_FROM: original.id}
    assert (copy.time, copy.host, copy.username, copy.paths, copy.tags, copy.stats) == (
        original.time,
        original.host,
        original.username,
        original.paths,
        original.tags,
        original.stats,
    )
    # the ids are the target's own: no tree chunk id is shared with the source
    assert not set(copy.tree) & set(original.tree)
    assert_checks(target)
    assert_restores(target, copy.id, src, tmp_path / "out")
    assert events and events[-1].finished and events[-1].phase is Phase.COPY
    assert events[-1].files_done == original.stats.files_new


def copied_once(source: Repository, target: Repository, src: Path, seed: int) -> None:
    fill(src, seed)
    source.backup([src])
    source.copy_to(target)


def test_a_second_copy_copies_nothing(
    source: Repository, target: Repository, tmp_path: Path
) -> None:
    copied_once(source, target, tmp_path / "src", 1)
    before = sorted(i.key for i in target.store.list() if not i.key.startswith("locks/"))
    again = source.copy_to(target)
    assert [s.already for s in again.snapshots] == [True]
    assert again.to_json()["chunks_read"] == 0
    assert sorted(i.key for i in target.store.list() if not i.key.startswith("locks/")) == before


def test_copying_back_recognises_the_original(
    source: Repository, target: Repository, tmp_path: Path
) -> None:
    copied_once(source, target, tmp_path / "src", 2)
    back = target.copy_to(source)
    assert [s.already for s in back.snapshots] == [True]
    assert len(source.snapshots()) == 1


def test_shared_chunks_are_stored_once_and_a_later_copy_reads_only_what_changed(
    source: Repository, target: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    fill(src, 3)
    first = source.backup([src])
    (src / "new").write_bytes(random.Random(9).randbytes(100_000))
    second = source.backup([src])
    report = source.copy_to(target, [first.id, second.id])
    one, two = report.snapshots
    # the second snapshot's unchanged files are mapped through the first's copy, not read
    assert two.chunks_read == 1 and two.bytes_read == 100_000
    assert one.chunks_read > 10
    # and its chunks were not stored twice: the target holds each plaintext once
    sizes = [e.raw_length for _, entries in _data_packs(target) for e in entries]
    assert sum(sizes) == sum(
        s for _, entries in _data_packs(source) for s in (e.raw_length for e in entries)
    )
    assert_checks(target)
    assert_restores(target, two.target or "", src, tmp_path / "out")
    (src / "new").unlink()
    assert_restores(target, one.target or "", src, tmp_path / "out1")


def _data_packs(repo: Repository) -> list[tuple[str, list[PackEntry]]]:
    found = []
    for info in repo.list_packs():
        pack_id = info.key.rsplit("/", 1)[-1]
        pack, entries = repo.read_pack(pack_id)
        if pack.type is BlobType.DATA:
            found.append((pack_id, entries))
    return found


def test_a_later_copy_reads_only_new_chunks_across_runs(
    source: Repository, target: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    copied_once(source, target, src, 4)
    (src / "added").write_bytes(random.Random(5).randbytes(50_000))
    later = source.backup([src])
    [_, two] = source.copy_to(target).snapshots
    assert two.source == later.id and two.chunks_read == 1
    assert_restores(target, two.target or "", src, tmp_path / "out")


class FailingStore(StoreWrapper):
    """Fails every write after the ``after``-th pack (a network gone, a full disk)."""

    def __init__(self, inner: BlobStore, after: int) -> None:
        super().__init__(inner)
        self.left = after

    def _run(self, op: str, key: str, call: Callable[[], R]) -> R:
        if op == "put" and key.startswith("data/"):
            if self.left == 0:
                raise PermanentStorageError(f"{key}: no space left on device")
            self.left -= 1
        return call()


def test_an_interrupted_copy_leaves_a_checkable_target_and_a_rerun_completes(
    source: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    fill(src, 6, files=30)
    first = source.backup([src])
    fill(src, 7, files=30)
    second = source.backup([src])
    make_repo(tmp_path / "target", "target-pw", SMALL_CHUNKS)
    failing = FailingStore(LocalStore(str(tmp_path / "target")), after=12)
    broken = Repository.open(failing, "target-pw")
    with pytest.raises(PermanentStorageError):
        source.copy_to(broken)
    target = Repository.open(LocalStore(str(tmp_path / "target")), "target-pw")
    assert_checks(target)
    held = [s.metadata[COPIED_FROM] for s in target.snapshots()]
    assert second.id not in held
    report = source.copy_to(target)
    assert {s.source for s in report.copied} | set(held) == {first.id, second.id}
    assert_checks(target)
    copy = next(s for s in target.snapshots() if s.metadata[COPIED_FROM] == second.id)
    assert_restores(target, copy.id, src, tmp_path / "out")


def test_chunks_the_target_holds_from_its_own_backup_are_not_stored_again(
    source: Repository, target: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(12)
    for i in range(20):  # files smaller than any chunk: cut alike in both repositories
        (src / f"small{i}").write_bytes(rng.randbytes(rng.randint(1, 15_000)))
    source.backup([src])
    target.backup([src])
    packs = {p for p, _ in _data_packs(target)}
    [done] = source.copy_to(target).snapshots
    assert done.chunks_read == 20
    assert {p for p, _ in _data_packs(target)} == packs
    assert_restores(target, done.target or "", src, tmp_path / "out")


def test_a_dry_run_writes_nothing(source: Repository, target: Repository, tmp_path: Path) -> None:
    fill(tmp_path / "src", 8, files=2)
    made = source.backup([tmp_path / "src"])
    report = source.copy_to(target, dry_run=True)
    assert report.dry_run and [(s.source, s.target) for s in report.snapshots] == [(made.id, None)]
    assert target.snapshots() == [] and list(target.list_packs()) == []


def test_only_the_snapshots_named_are_copied(
    source: Repository, target: Repository, tmp_path: Path
) -> None:
    fill(tmp_path / "a", 10, files=2)
    fill(tmp_path / "b", 11, files=2)
    source.backup([tmp_path / "a"])
    wanted: Snapshot = source.backup([tmp_path / "b"])
    report = source.copy_to(target, [wanted.id[:10]])
    assert [s.source for s in report.snapshots] == [wanted.id]
    assert [s.paths for s in target.snapshots()] == [wanted.paths]


def test_a_chunk_lost_in_the_source_stops_the_copy_and_the_target_stays_whole(
    source: Repository, target: Repository, tmp_path: Path
) -> None:
    fill(tmp_path / "src", 13, files=4)
    source.backup([tmp_path / "src"])
    pack_id, _ = next(p for p in _data_packs(source))
    source.store.delete(f"data/{pack_id[:2]}/{pack_id}")
    with pytest.raises(IntegrityError, match=f"pack {pack_id} is missing"):
        source.copy_to(target)
    assert target.snapshots() == []
    assert_checks(target)
