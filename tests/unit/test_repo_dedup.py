"""Deduplication, the files cache, and small deltas for files rewritten in place."""

from __future__ import annotations

import itertools
import os
import random
from dataclasses import replace
from pathlib import Path

import pytest

from haprotect.model.snapshot import Node, NodeType
from haprotect.repo import BackupOptions, KdfParams, Repository
from haprotect.repo.backup import dispatch
from haprotect.repo.backup.filereader import open_for_reading
from haprotect.repo.backup.files_cache import FilesCache
from haprotect.repo.backup.parts import BackupParts
from haprotect.repo.backup.run import run_backup
from haprotect.repo.backup.walker import SourceFiles, read_xattrs
from haprotect.repo.blobs.chunker import looks_paged, sample_offsets
from haprotect.repo.format.index import Index
from haprotect.repo.format.pack import BlobType, PackEntry, PackInfo
from haprotect.repo.format.tree import NodeStream, encode_node, encode_tail, sort_key
from haprotect.storage.memory import MemoryStore
from haprotect.testing.repo import MiB

PAGE = 8192


@pytest.fixture
def repo() -> Repository:
    return Repository.init(MemoryStore(), "secret", kdf=KdfParams(n=1 << 10), pack_size=4 * MiB)


def make_tree(root: Path) -> None:
    rng = random.Random(7)
    for d in range(5):
        sub = root / f"dir{d}"
        sub.mkdir(parents=True)
        for f in range(40):
            (sub / f"small{f}").write_bytes(rng.randbytes(rng.randint(0, 20_000)))
    (root / "big.bin").write_bytes(rng.randbytes(9 * MiB + 123))
    (root / "text.log").write_bytes(b"line of a log file\n" * 200_000)


class CountingOpener:
    def __init__(self) -> None:
        self.opened: list[bytes] = []
        self._real = open_for_reading

    def __call__(self, path: bytes) -> int:
        self.opened.append(path)
        return self._real(path)


def test_second_backup_reads_nothing_and_adds_nothing(repo: Repository, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    first = repo.backup([tmp_path / "src"])
    assert first.stats.files_new == 202 and first.stats.bytes_read == first.stats.bytes_total
    opener = CountingOpener()
    second = run_backup(repo, [tmp_path / "src"], parts=BackupParts(files=SourceFiles(open=opener)))
    assert opener.opened == [], "unchanged files are not even opened"
    assert second.parent == first.id
    assert second.stats.files_unchanged == 202
    assert second.stats.bytes_read == 0
    assert second.stats.bytes_added == 0
    assert second.tree == first.tree


def test_changed_file_is_read_again_and_only_it(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    repo.backup([src])
    with open(src / "dir3" / "small5", "ab") as f:
        f.write(b"more")
    opener = CountingOpener()
    snapshot = run_backup(repo, [src], parts=BackupParts(files=SourceFiles(open=opener)))
    assert opener.opened == [os.fsencode(src / "dir3" / "small5")]
    assert (snapshot.stats.files_changed, snapshot.stats.files_unchanged) == (1, 201)


def test_backup_without_parent_deduplicates_everything(repo: Repository, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    first = repo.backup([tmp_path / "src"])
    again = repo.backup([tmp_path / "src"], use_parent=False)
    assert again.stats.files_new == 202 and again.stats.bytes_read == first.stats.bytes_read
    assert again.stats.chunks_added == 0
    assert again.stats.bytes_added < 64 * 1024


def test_copy_of_a_tree_elsewhere_costs_almost_nothing(repo: Repository, tmp_path: Path) -> None:
    make_tree(tmp_path / "a")
    first = repo.backup([tmp_path / "a"])
    os.rename(tmp_path / "a", tmp_path / "b")
    moved = repo.backup([tmp_path / "b"])
    assert moved.stats.bytes_added < first.stats.bytes_added // 50


def test_compressible_data_is_stored_compressed(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "log").write_bytes(b"2025-01-01 INFO all is well\n" * 400_000)
    snapshot = repo.backup([src])
    assert snapshot.stats.bytes_added < snapshot.stats.bytes_total // 20


def rewrite_pages(path: Path, pages: int, seed: int) -> None:
    rng = random.Random(seed)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        for page in rng.sample(range(size // PAGE), pages):
            f.seek(page * PAGE)
            f.write(rng.randbytes(PAGE))


def test_database_file_rewritten_in_place_gives_a_small_delta(
    repo: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "db"
    src.mkdir()
    table = src / "16384"
    table.write_bytes(random.Random(1).randbytes(64 * MiB))
    first = repo.backup([src])
    rewrite_pages(table, 40, seed=2)
    second = repo.backup([src])
    assert second.stats.files_changed == 1
    # each changed 8 KiB page costs one 64 KiB block (1 MiB chunks would cost ~40 MiB)
    assert second.stats.bytes_added < 40 * 64 * 1024 + 256 * 1024
    assert second.stats.bytes_added < first.stats.bytes_added // 20
    out = tmp_path / "out"
    repo.restore(second.id, out)
    assert (out / str(table).lstrip("/")).read_bytes() == table.read_bytes()


def test_appended_file_gives_a_small_delta(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    log = src / "app.log"
    rng = random.Random(3)
    log.write_bytes(rng.randbytes(20 * MiB + 5))
    repo.backup([src])
    with open(log, "ab") as f:
        f.write(rng.randbytes(100_000))
    second = repo.backup([src])
    assert second.stats.bytes_added < 6 * MiB


def test_metadata_changes_are_recorded_and_only_those_files_read(
    repo: Repository, tmp_path: Path
) -> None:
    """Unchanged files reuse the parent's records as they are; the others are re-encoded."""
    src = tmp_path / "src"
    make_tree(src)
    first = repo.backup([src])
    os.chmod(src / "dir1" / "small3", 0o600)
    os.setxattr(src / "dir2" / "small4", "user.note", b"x")
    opener = CountingOpener()
    second = run_backup(repo, [src], parts=BackupParts(files=SourceFiles(open=opener)))
    assert sorted(opener.opened) == [
        os.fsencode(src / "dir1" / "small3"),
        os.fsencode(src / "dir2" / "small4"),
    ], "a changed ctime means reading again"
    assert (second.stats.files_changed, second.stats.files_unchanged) == (2, 200)
    assert second.stats.bytes_added < 64 * 1024, "only tree blobs are new"
    old = {n.path: n for n in repo.nodes(first)}
    new = {n.path: n for n in repo.nodes(second)}
    rel = str(src).lstrip("/")
    changed = new[f"{rel}/dir1/small3"]
    assert changed.mode == 0o600 and changed.content == old[f"{rel}/dir1/small3"].content
    assert new[f"{rel}/dir2/small4"].xattrs == (("user.note", b"x"),)
    assert new[f"{rel}/big.bin"] == old[f"{rel}/big.bin"]
    assert len(new) == len(old)


def test_only_page_structured_files_get_fixed_blocks(repo: Repository, tmp_path: Path) -> None:
    """A multiple of 4 KiB is not enough: the name, a magic or the page headers decide."""
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(9)
    random_data = rng.randbytes(8 * MiB)
    pages = b"".join(
        b"PAGE" + page.to_bytes(4, "little") + bytes(8) + rng.randbytes(PAGE - 16)
        for page in range(8 * MiB // PAGE)
    )
    (src / "archive.tar.gz").write_bytes(random_data)
    (src / "16384").write_bytes(random_data)
    (src / "store.bin").write_bytes(pages)
    snapshot = repo.backup([src])
    blocks = {n.name: len(n.content) for n in repo.nodes(snapshot) if n.content}
    assert blocks["archive.tar.gz"] < 16, "cut by content: chunks of about 1 MiB"
    assert blocks["16384"] == blocks["store.bin"] == 8 * MiB // (64 * 1024)


def test_looks_paged_by_name_magic_and_headers() -> None:
    rng = random.Random(2)
    header_pages = [
        b"\x04\x20" + rng.randbytes(6) + b"\0\0\0\0" + rng.randbytes(20) for _ in range(8)
    ]
    text = [rng.choice([b"GET /index.html 200 ", b"user=alice ok=true "]) * 2 for _ in range(8)]
    assert looks_paged(b"16384.1", text) and looks_paged(b"orders.db", text)
    assert looks_paged(b"x", [b"SQLite format 3\x00" + bytes(16), *text[1:]])
    assert looks_paged(b"data.bin", header_pages)
    assert not looks_paged(b"data.bin", [rng.randbytes(32) for _ in range(8)])
    assert not looks_paged(b"access.log", text[:2] + [rng.randbytes(32) for _ in range(6)])
    assert looks_paged(b"disk", [bytes(32)] * 7 + [rng.randbytes(32)]), "mostly empty"
    assert sample_offsets(1 << 30)[0] == 0
    assert all(o % (16 * 1024) == 0 for o in sample_offsets(123 * MiB))


def test_unchanged_files_keep_their_xattrs_without_reading_them(
    repo: Repository, tmp_path: Path
) -> None:
    """Setting an xattr changes the ctime, so a file unchanged up to its ctime has its parent's."""
    src = tmp_path / "src"
    make_tree(src)
    os.setxattr(src / "dir1" / "small3", "user.kept", b"v")
    first = repo.backup([src])
    read: list[bytes] = []

    def counting(source: bytes | int) -> tuple[tuple[str, bytes], ...]:
        # the reader of a changed file reads them through its open descriptor
        read.append(
            os.fsencode(os.readlink(f"/proc/self/fd/{source}"))
            if isinstance(source, int)
            else source
        )
        return read_xattrs(source)

    os.setxattr(src / "dir2" / "small4", "user.new", b"w")
    second = run_backup(repo, [src], parts=BackupParts(files=SourceFiles(read_xattrs=counting)))
    files = [p for p in read if os.path.isfile(p)]
    assert files == [os.fsencode(src / "dir2" / "small4")]
    old = {n.path: n for n in repo.nodes(first)}
    new = {n.path: n for n in repo.nodes(second)}
    rel = str(src).lstrip("/")
    assert new[f"{rel}/dir1/small3"].xattrs == (("user.kept", b"v"),)
    assert new[f"{rel}/dir1/small3"] == old[f"{rel}/dir1/small3"]
    assert new[f"{rel}/dir2/small4"].xattrs == (("user.new", b"w"),)


def test_small_files_of_a_batch_lie_in_tree_order_in_their_pack(tmp_path: Path) -> None:
    """Two workers storing batches at once do not interleave their files' blobs."""
    repo = Repository.init(MemoryStore(), "secret", kdf=KdfParams(n=1 << 10), pack_size=16 * MiB)
    src = tmp_path / "src"
    rng = random.Random(17)
    for d in range(4):
        sub = src / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(200):
            (sub / f"f{f:03d}").write_bytes(rng.randbytes(rng.randint(1, 6000)))
    snapshot = repo.backup([src], options=BackupOptions(workers=2))
    blobs = []
    for node in repo.nodes(snapshot):
        for entry in node.content:
            assert isinstance(entry, bytes)
            location = repo.index.lookup(entry)
            assert location is not None
            blobs.append(location)
    assert len(blobs) == 800
    breaks = sum(
        1
        for before, after in itertools.pairwise(blobs)
        if after.pack.id != before.pack.id or after.offset != before.offset + before.length
    )
    batches = -(-len(blobs) // dispatch.SMALL_BATCH_FILES)
    assert breaks < batches


def test_the_files_cache_merges_the_walk_with_the_parents_records() -> None:
    """Matched heads, lookups past removed files, added files and out-of-order keys."""

    def node(path: str, size: int = 1) -> Node:
        return Node(path=path, type=NodeType.FILE, mode=0o644, mtime_ns=1, ctime_ns=2, size=size)

    def head(n: Node) -> bytes:
        return encode_node(n)[:-2]  # without the closing brace

    parent = [node("a"), node("a/1"), node("a/2"), node("a/3"), node("a/4"), node("b", 5)]
    cache = FilesCache(parent, Index())
    assert cache.matching_record(head(node("a/1"))) is None, "the directory a comes first"
    assert cache.lookup_record(sort_key("a/1")) == encode_node(node("a/1"))
    assert cache.matching_record(head(node("a/2"))) == encode_node(node("a/2"))
    assert cache.matching_record(head(node("a/4"))) is None, "a/3 comes first"
    assert cache.lookup_record(sort_key("a/3x")) is None, "a file the parent did not have"
    assert cache.lookup_record(sort_key("a/4")) == encode_node(node("a/4"))
    assert cache.lookup_record(sort_key("a/2")) is None, "out of order: the merge is past it"
    assert cache.matching_record(head(node("b", 6))) is None, "b changed"
    assert cache.lookup_record(sort_key("b")) == encode_node(node("b", 5))
    assert cache.lookup_record(sort_key("c")) is None


def test_runs_of_unchanged_files_are_taken_as_one_by_one_reuse_would() -> None:
    """unchanged_run takes exactly what reuse_record would take in a row, or nothing."""
    rng = random.Random(11)
    indexed = [rng.randbytes(32) for _ in range(40)]
    index = Index()
    index.add_pack(
        PackInfo("p" * 64, BlobType.DATA, b"s"),
        [PackEntry(chunk_id, 0, 1, 1, 0) for chunk_id in indexed],
    )

    def head_of(n: Node) -> bytes:
        return encode_node(n)[: -len(encode_tail(n.target, n.content, n.xattrs).encode())]

    for trial in range(300):
        nodes = []
        for k in range(rng.randint(1, 12)):
            content = tuple(
                rng.choice([*indexed[:5], rng.randint(1, 9)])
                if rng.random() < 0.97
                else rng.randbytes(32)  # a chunk the index lacks
                for _ in range(rng.randint(0, 3))
            )
            xattrs = (("user.k", b"v:]"),) if rng.random() < 0.2 else ()
            nodes.append(
                Node(
                    path=f"d/{k:03}",
                    type=NodeType.FILE,
                    mode=0o644,
                    mtime_ns=1,
                    ctime_ns=2,
                    size=7,
                    content=content,
                    xattrs=xattrs,
                )
            )
        records = [encode_node(n) for n in nodes]
        heads = [
            head_of(n) if rng.random() < 0.9 else head_of(replace(n, ctime_ns=3)) for n in nodes
        ]
        if trial % 10 == 0:  # a quoted content item that is no chunk id
            records[-1] = heads[-1] + b',"content":["zz"]}\n'
        probe = FilesCache((), index)
        reusable = [probe.reuse_record(r, h, None) for r, h in zip(records, heads, strict=True)]
        # every record here is well formed after its head (the crafted one too):
        # a run is the records whose heads match, taken whole if each would be reused
        matching = [r.startswith(h) for r, h in zip(records, heads, strict=True)]
        run = next((k for k, ok in enumerate(matching) if not ok), len(matching))
        one_by_one = next((k for k, ok in enumerate(reusable) if not ok), len(reusable))
        cache = FilesCache(NodeStream([b"".join(records)]), index)
        taken = cache.unchanged_run(heads)
        expected = records[:run] if one_by_one == run else []
        assert taken == expected, trial
        rest = records[len(taken) :]
        assert [cache.matching_record(b"") for _ in rest] == rest, "the others are left"


def test_a_file_whose_owner_was_renamed_keeps_its_content_with_progress_shown(
    repo: Repository, tmp_path: Path
) -> None:
    """Its record differs before the ctime (the user's name), its content is the parent's."""
    src = tmp_path / "src"
    make_tree(src)
    first = repo.backup([src])
    renamed = BackupParts(files=SourceFiles(user_name=lambda uid: "renamed"))
    events: list[object] = []
    second = run_backup(repo, [src], on_progress=events.append, parts=renamed)
    assert events, "progress was shown"
    assert second.stats.files_unchanged == 202 and second.stats.bytes_read == 0
    old = {n.path: n for n in repo.nodes(first)}
    for node in repo.nodes(second):
        if node.type is NodeType.FILE:
            assert node.user == "renamed" and node.content == old[node.path].content
