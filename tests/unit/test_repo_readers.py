"""Backups whose small files are read by forked processes: same snapshot, nothing lost."""

from __future__ import annotations

import errno
import os
import random
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from tests.conftest import require_component

from haprotect.model.snapshot import Snapshot
from haprotect.repo import BackupOptions, KdfParams, Repository
from haprotect.repo.backup.fileworker import SmallFileReader
from haprotect.repo.backup.parts import BackupParts, ReaderMaker
from haprotect.repo.backup.run import run_backup
from haprotect.repo.backup.walker import SourceFiles, Walker
from haprotect.repo.blobs.blobsink import BlobSink
from haprotect.repo.format.config import RepoConfig
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import Index
from haprotect.repo.process.forkpool import ForkPool, Handler, PooledProcess
from haprotect.storage.local import LocalStore
from haprotect.testing.repo import MiB, describe

THREADS = BackupOptions(readers=0)
READERS = BackupOptions(readers=2, readers_after_batches=1)
"""Readers fork at the first batch, so that a small tree goes through them."""


def xattrs_supported(path: Path) -> bool:
    probe = path / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


def make_small_files(root: Path, seed: int = 7) -> None:
    """About 2,000 small files: text, random, zeros, duplicates, a CDC-cut one, xattrs, links."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    words = [rng.randbytes(rng.randint(2, 8)).hex().encode() for _ in range(200)]
    for d in range(8):
        folder = root / f"dir{d}"
        folder.mkdir()
        for i in range(250):
            kind = i % 5
            size = rng.randint(0, 12_000)
            if kind == 0:
                data = b" ".join(rng.choices(words, k=size // 8))
            elif kind == 1:
                data = rng.randbytes(size)
            elif kind == 2:
                data = bytes(size)
            elif kind == 3:
                data = b"the same small file in every folder\n" * 40
            else:
                data = rng.randbytes(size // 2) + bytes(size // 2)
            (folder / f"f{i:03d}").write_bytes(data)
    # larger than the chunker's minimum, still a small file: cut by content in a reader
    (root / "dir3" / "cut-by-content").write_bytes(rng.randbytes(700 * 1024))
    os.link(root / "dir1" / "f001", root / "dir7" / "hardlink-to-dir1-f001")
    if xattrs_supported(root):
        os.setxattr(root / "dir2" / "f010", "user.note", b"kept by a reader")
        os.setxattr(root / "dir5" / "f004", "user.empty", b"")


class Watch:
    """Parts for backups that note what their readers do.

    ``calls``: the pid of the reader each batch was sent to; ``lost``: how the
    readers of each backup were lost, noted as the backup ends; ``placed``:
    how many chunks each batch a reader read sent. ``on_send`` is told of each
    reader a batch goes to, ``reader`` makes the readers' handlers, and the
    ``fail_packing``-th batch of chunks from the readers fails to be packed.
    """

    def __init__(
        self,
        on_send: Callable[[PooledProcess], None] | None = None,
        reader: ReaderMaker = SmallFileReader,
        fail_packing: int = 0,
    ) -> None:
        self.calls: list[int] = []
        self.sent: list[PooledProcess] = []
        self.lost: list[list[str]] = []
        self.placed: list[int] = []
        watch = self

        class WatchedPool(ForkPool):
            def take(self) -> PooledProcess | None:
                process = super().take()
                if process is not None:
                    watch.calls.append(process.pid)
                    watch.sent.append(process)
                    if on_send is not None:
                        on_send(process)
                return process

            def close(self, *, kill: bool = False) -> None:
                watch.lost.append(list(self.lost))
                super().close(kill=kill)

        class WatchedSink(BlobSink):
            def store_prepared(self, prepared: Any) -> None:
                watch.placed.append(len(prepared))
                if len(watch.placed) == fail_packing:
                    raise OSError(errno.ENOSPC, "No space left on device")
                super().store_prepared(prepared)

        self.parts = BackupParts(readers=WatchedPool, reader=reader, sink=WatchedSink)

    def backup(self, repo: Repository, src: Path, options: BackupOptions, **kw: Any) -> Snapshot:
        return run_backup(repo, [src], options=options, parts=self.parts, **kw)


@pytest.fixture
def watch() -> Watch:
    return Watch()


def acting_before(path: Path, action: Callable[[], object]) -> ReaderMaker:
    """Readers that run ``action`` before reading a batch with ``path`` in it."""

    def make(
        config: RepoConfig, key: MasterKey, index: Index, size: int, files: SourceFiles
    ) -> Handler:
        reader = SmallFileReader(config, key, index, size, files)

        def acting_first(request: Any, shared: memoryview) -> Any:
            if any(source == os.fsencode(path) for source, *_ in request):
                action()
            return reader(request, shared)

        return acting_first

    return make


def new_repo(path: Path) -> Repository:
    return Repository.init(LocalStore(path), "pw", kdf=KdfParams(n=1 << 10), pack_size=4 * MiB)


def records(repo: Repository, snapshot_id: str, src: Path) -> list[Any]:
    """The nodes of ``src`` and below (its parents change as the test goes)."""
    inside = str(src).lstrip("/")
    nodes = repo.nodes(repo.snapshot(snapshot_id))
    return [n for n in nodes if n.path == inside or n.path.startswith(inside + "/")]


def test_readers_store_what_threads_store(tmp_path: Path, watch: Watch) -> None:
    src = tmp_path / "src"
    make_small_files(src)
    repo = new_repo(tmp_path / "repo")
    first = watch.backup(repo, src, READERS)
    calls = watch.calls
    assert len(set(calls)) == 2, "both readers took batches"
    assert first.errors == () and first.stats.files_new == 2002
    ids = [e.id for p in repo.list_packs() for e in repo.read_pack(p.key.rsplit("/", 1)[1])[1]]
    assert len(ids) == len(set(ids)), "every chunk stored once"
    report = repo.check(read_data=True)
    assert report.ok, report
    out = tmp_path / "out"
    assert repo.restore(first.id, out).errors == ()
    assert describe(out / str(src).lstrip("/")) == describe(src)
    # the threads, reading every file again, make the same records and find
    # every chunk stored; so do the readers, which know the index
    trees = set(first.tree)
    placed = watch.placed
    del placed[:]
    for options in (THREADS, READERS):
        before = len(calls)
        again = watch.backup(repo, src, options, use_parent=False)
        assert (len(calls) > before) is (options is READERS)
        assert records(repo, again.id, src) == records(repo, first.id, src)
        # only tree chunks are new (the restore changed the tree above src)
        assert again.stats.chunks_added == len(set(again.tree) - trees)
        assert again.stats.bytes_read == first.stats.bytes_read
        trees |= set(again.tree)
    assert placed and set(placed) == {0}, "the readers sent no chunk the index has"


def test_a_reader_killed_mid_backup_leaves_its_batch_to_the_threads(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_small_files(src)

    def killing_the_second(process: PooledProcess) -> None:
        if len(watch.sent) == 2:
            os.kill(process.pid, signal.SIGKILL)

    watch = Watch(on_send=killing_the_second)
    sent, lost = watch.sent, watch.lost
    repo = new_repo(tmp_path / "repo")
    snapshot = watch.backup(repo, src, READERS)
    killed = sent[1]
    assert all(p is not killed for p in sent[2:]), "a lost reader gets no more batches"
    assert lost == [[f"process {killed.pid} ended: killed by signal 9"]]
    with pytest.raises(ChildProcessError):
        os.waitpid(killed.pid, os.WNOHANG)
    assert snapshot.errors == () and snapshot.stats.files_new == 2002
    expected = repo.backup([src], options=THREADS, use_parent=False)
    assert records(repo, snapshot.id, src) == records(repo, expected.id, src)
    assert expected.stats.chunks_added == len(set(expected.tree) - set(snapshot.tree))
    assert repo.check(read_data=True).ok


def test_a_reader_that_fails_leaves_every_batch_to_the_threads(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_small_files(src)

    def failing(request: object, shared: memoryview) -> Any:
        raise MemoryError("no room in the reader")

    watch = Watch(reader=lambda *made: failing)
    calls, lost = watch.calls, watch.lost
    repo = new_repo(tmp_path / "repo")
    snapshot = watch.backup(repo, src, READERS)
    assert len(calls) == 2
    assert [sorted(reasons) for reasons in lost] == [
        sorted(f"process {pid} failed: MemoryError: no room in the reader" for pid in calls)
    ]
    assert snapshot.errors == () and snapshot.stats.files_new == 2002
    out = tmp_path / "out"
    repo.restore(snapshot.id, out)
    assert describe(out / str(src).lstrip("/")) == describe(src)


def test_a_file_a_reader_cannot_open_is_an_error_of_that_file_only(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_small_files(src)
    gone = src / "dir4" / "f100"
    watch = Watch(reader=acting_before(gone, lambda: gone.unlink(missing_ok=True)))
    repo = new_repo(tmp_path / "repo")
    snapshot = watch.backup(repo, src, READERS)
    assert watch.calls, "the readers took the batches"
    assert [(e.path, e.message) for e in snapshot.errors] == [
        (str(gone).lstrip("/"), "No such file or directory")
    ]
    assert snapshot.stats.files_new == 2001
    paths = {n.path for n in records(repo, snapshot.id, src)}
    assert str(gone).lstrip("/") not in paths and str(src / "dir4" / "f101").lstrip("/") in paths


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    yield new_repo(tmp_path / "repo")


def test_reader_replies_match_what_the_threads_make(tmp_path: Path, repo: Repository) -> None:
    """Records, content and placed chunks, for a read file, a missing one and one that shrank."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "text").write_bytes(b"compressible text " * 500)
    (src / "random").write_bytes(os.urandom(5000))
    (src / "zeros").write_bytes(bytes(8192))
    (src / "shrank").write_bytes(b"0123456789")
    (src / "missing").write_bytes(b"soon gone")
    entries = {os.path.basename(e.path): e for e in Walker([os.fsencode(src)], print) if e.is_file}
    request = [(e.source, e.st.st_size, e.head, None) for e in entries.values()]
    names = list(entries)
    (src / "shrank").write_bytes(b"01234")
    (src / "missing").unlink()
    key, index = repo._key, repo.index
    reader = SmallFileReader(repo.config, key, index, 1 * MiB)
    shared = memoryview(bytearray(1 * MiB))
    replies, placed = reader(request, shared)
    by_name = dict(zip(names, replies, strict=True))
    for name in ("text", "random", "zeros"):
        content, got, failed, record, _ = by_name[name]
        data = (src / name).read_bytes()
        assert (got, failed) == (len(data), None)
        assert record == entries[name].record(got, content)
    assert by_name["zeros"][0] == [8192]
    assert by_name["missing"][2] == "No such file or directory"
    content, got, failed, record, xattrs = by_name["shrank"]
    assert (got, failed, record) == (5, None, None) and xattrs is not None
    # each new chunk once, as stored: compressed text, random and the shrunk file as they are
    stored = {}
    for chunk_id, length, at, n in placed:
        blob = bytes(shared[at : at + n])
        stored[chunk_id] = zstandard.decompress(blob, length) if n < length else blob
    expected = (b"compressible text " * 500, (src / "random").read_bytes(), b"01234")
    assert stored == {key.chunk_id(data): data for data in expected}
    text_id = key.chunk_id(b"compressible text " * 500)
    assert [n < length for chunk_id, length, _, n in placed if chunk_id == text_id] == [True]
    # a second batch of the same files sends no chunk again
    again, placed_again = reader(request[:3], shared)
    assert placed_again == [] and [r[0] for r in again] == [r[0] for r in replies[:3]]


def test_a_file_that_shrinks_while_a_reader_has_it_is_recorded_as_read(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_small_files(src)
    shrinking = src / "dir6" / "f000"
    watch = Watch(reader=acting_before(shrinking, lambda: os.truncate(shrinking, 100)))
    repo = new_repo(tmp_path / "repo")
    snapshot = watch.backup(repo, src, READERS)
    assert watch.calls and snapshot.errors == ()
    nodes = {n.path: n for n in records(repo, snapshot.id, src)}
    node = nodes[str(shrinking).lstrip("/")]
    assert node.size == 100
    out = tmp_path / "out"
    repo.restore(snapshot.id, out, include=[str(shrinking)])
    assert (out / str(shrinking).lstrip("/")).read_bytes() == shrinking.read_bytes()


def test_a_failure_while_packing_a_readers_batch_fails_the_backup_cleanly(
    tmp_path: Path,
) -> None:
    """The error as it is, no reader left running, no pack left half written."""
    src = tmp_path / "src"
    make_small_files(src)
    watch = Watch(fail_packing=3)
    calls = watch.calls
    repo = new_repo(tmp_path / "repo")
    with pytest.raises(OSError, match="No space left on device"):
        watch.backup(repo, src, READERS)
    assert calls, "the readers took batches"
    with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
        assert [int(pid) for pid in f.read().split() if int(pid) in calls] == []
    left = [p.name for p in (tmp_path / "repo").rglob("*") if p.name.endswith(".tmp~")]
    assert left == []
    assert repo.snapshots() == []


def test_readers_leave_xattrs_out_when_the_backup_does(tmp_path: Path, watch: Watch) -> None:
    src = tmp_path / "src"
    make_small_files(src)
    require_component(
        "user xattrs on the test file system", xattrs_supported(src), "run on ext4, xfs or tmpfs"
    )
    repo = new_repo(tmp_path / "repo")
    plain = BackupOptions(readers=2, readers_after_batches=1, xattrs=False)
    snapshot = watch.backup(repo, src, plain)
    assert watch.calls
    nodes = records(repo, snapshot.id, src)
    assert all(n.xattrs == () for n in nodes)
    reference = repo.backup([src], options=BackupOptions(readers=0, xattrs=False), use_parent=False)
    assert records(repo, reference.id, src) == nodes
