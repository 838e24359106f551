"""Backup and restore of awkward trees, byte for byte and mode for mode."""

from __future__ import annotations

import base64
import gc
import json
import os
import random
import weakref
from pathlib import Path

import pytest
from tests.conftest import require_component

from haprotect.model.progress import Phase, ProgressEvent
from haprotect.model.snapshot import Node, NodeType
from haprotect.repo import KdfParams, Repository, RestoreOptions
from haprotect.repo.backup import fileworker as fileworker_module
from haprotect.repo.backup.filereader import open_for_reading
from haprotect.repo.backup.parts import BackupParts
from haprotect.repo.backup.run import run_backup
from haprotect.repo.backup.walker import Entry, SourceFiles, Walker
from haprotect.repo.format.tree import decode_node, encode_node, record_key, sort_key
from haprotect.repo.restore import restorer as restorer_module
from haprotect.storage.memory import MemoryStore
from haprotect.testing.repo import (
    ODD_NAME,
    SPARSE_SIZE,
    MiB,
    describe,
    make_awkward_tree,
    write_crafted_snapshot,
)

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
    require_component("root (to restore owners)", os.geteuid() == 0, "run the tests as root")
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
    repo: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok").write_text("fine")
    (src / "secret").write_text("x")

    def refuse_secret(path: bytes) -> int:
        if path.endswith(b"/secret"):
            raise PermissionError(13, "Permission denied")
        return open_for_reading(path)

    snapshot = run_backup(repo, [src], parts=BackupParts(files=SourceFiles(open=refuse_secret)))
    assert [(e.path.rsplit("/", 1)[1], e.message) for e in snapshot.errors] == [
        ("secret", "Permission denied")
    ]
    assert snapshot.stats.files_new == 1 and snapshot.stats.errors == 1
    names = [n.name for n in repo.nodes(snapshot)]
    assert "ok" in names and "secret" not in names


def test_names_that_vanish_or_fail_during_the_walk(repo: Repository, tmp_path: Path) -> None:
    """A name gone before its lstat is skipped; one whose lstat fails is reported; the rest stay."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b", "c"):
        (src / name).write_text(name)

    def listdir_with_a_ghost(path: bytes) -> list[bytes]:
        return [*os.listdir(path), b"ghost"]

    def lstat_refusing_b(path: bytes, *, dir_fd: int | None = None) -> os.stat_result:
        if path == b"b":
            raise PermissionError(13, "Permission denied")
        return os.lstat(path, dir_fd=dir_fd)

    parts = BackupParts(files=SourceFiles(listdir=listdir_with_a_ghost, lstat=lstat_refusing_b))
    snapshot = run_backup(repo, [src], parts=parts)
    assert [(e.path.rsplit("/", 1)[1], e.message) for e in snapshot.errors] == [
        ("b", "Permission denied")
    ]
    names = [n.name for n in repo.nodes(snapshot) if n.path.startswith(str(src).lstrip("/"))]
    assert names == ["src", "a", "c"]


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


def test_many_small_files_restore_in_parallel_with_their_metadata(
    repo: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    rng = random.Random(11)
    for d in range(4):
        sub = src / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(150):
            path = sub / f"f{f}"
            path.write_bytes(rng.randbytes(rng.choice([0, 1, 4095, 4096, 9000, 70_000])))
            os.chmod(path, rng.choice([0o600, 0o644, 0o755, 0o400]))
            os.utime(path, ns=(1_000_000_000 * f + d, 1_000_000_000 * f + d))
    os.link(src / "d0" / "f3", src / "d3" / "link-to-f3")
    os.chmod(src / "d2", 0o555)
    snapshot = repo.backup([src])
    stats = repo.restore(snapshot.id, tmp_path / "out")
    assert stats.errors == () and stats.files == 601
    out = restored(tmp_path / "out", src)
    assert describe(out) == describe(src)
    assert os.stat(out / "d3" / "link-to-f3").st_ino == os.stat(out / "d0" / "f3").st_ino


@pytest.mark.parametrize("direct_io", [True, False])
def test_large_files_with_unaligned_chunks_and_holes_restore_exactly(
    repo: Repository, tmp_path: Path, direct_io: bool
) -> None:
    """Chunks and holes that end anywhere inside a 4 KiB block, written with O_DIRECT or not."""
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(5)
    pieces = {"a": rng.randbytes(MiB + 3), "b": rng.randbytes(777_777), "c": rng.randbytes(5)}
    for name, data in pieces.items():
        (src / name).write_bytes(data)
    base = repo.backup([src])
    content = {n.name: n.content for n in repo.nodes(base) if n.type is NodeType.FILE}
    a, b, c = content["a"], content["b"], content["c"]
    layouts = {
        "middle-hole": ((*a, 5000, *b, 123), pieces["a"] + bytes(5000) + pieces["b"] + bytes(123)),
        "leading-hole": ((70_001, *a, *c), bytes(70_001) + pieces["a"] + pieces["c"]),
        "tiny-chunks": (
            (*c, 3, *c, *a, 4093, *c),
            b"".join((pieces["c"], bytes(3), pieces["c"], pieces["a"], bytes(4093), pieces["c"])),
        ),
    }
    nodes = [Node(path="big", type=NodeType.DIR, mode=0o755, mtime_ns=1, ctime_ns=1)]
    for name, (entries, data) in sorted(layouts.items()):
        nodes.append(
            Node(
                path=f"big/{name}",
                type=NodeType.FILE,
                mode=0o640,
                size=len(data),
                mtime_ns=7,
                ctime_ns=7,
                content=tuple(entries),
            )
        )
    snapshot = write_crafted_snapshot(repo, nodes)
    target = tmp_path / "out"
    stats = repo.restore(snapshot.id, target, options=RestoreOptions(direct_io=direct_io))
    assert stats.errors == ()
    for name, (_, data) in layouts.items():
        path = target / "big" / name
        assert path.read_bytes() == data, name
        assert os.stat(path).st_mode & 0o777 == 0o640 and os.stat(path).st_mtime_ns == 7


def test_tree_records_are_the_json_the_format_specifies(tree: Path) -> None:
    """The hand-built encoder gives exactly the compact json.dumps of the record."""
    os.setxattr(tree / "text.txt", "user.k\u00e9y", b"v\x00\xff")
    nodes = [entry.node for entry in Walker([os.fsencode(tree)], lambda *_: None)]
    rng = random.Random(3)
    for i in range(300):
        nodes.append(
            Node(
                path=f'we"ird\\/n\u00e9\n{i}',
                type=rng.choice(list(NodeType)),
                mode=rng.randint(0, 0o7777),
                uid=rng.choice([0, 5]),
                user=rng.choice([None, "r\u00f6ot", 'q"']),
                mtime_ns=rng.randint(-5, 10**19),
                ctime_ns=rng.randint(0, 10**19),
                size=rng.choice([0, 10]),
                links=rng.choice([0, 1, 2]),
                target=rng.choice([None, "t\udcff", "x"]),
                hardlink=rng.choice([None, "1:2"]),
                content=tuple(rng.choice([os.urandom(32), 5]) for _ in range(rng.randint(0, 3))),
                xattrs=tuple((f"k{j}", os.urandom(3)) for j in range(rng.randint(0, 2))),
            )
        )
    for node in nodes:
        assert encode_node(node) == reference_record(node)
        assert decode_node(encode_node(node)) == node
        assert record_key(encode_node(node)) == sort_key(node.path)


def test_a_files_head_is_the_start_of_its_record(tree: Path) -> None:
    """Entry.head, built in one step for the usual file, is its record up to the ctime."""
    (tree / 'qu"ote\\back').write_bytes(b"x")
    (tree / "owned").write_bytes(b"y")
    os.chown(tree / "owned", 5, 7)
    os.chmod(tree / "owned", 0o2711)
    files = [e for e in Walker([os.fsencode(tree)], lambda *_: None) if e.is_file]
    assert len(files) >= 10
    for entry in files:
        record, head = reference_record(entry.node), entry.head
        assert record.startswith(head), entry.path
        assert head.endswith(b',"ctime":%d' % entry.st.st_ctime_ns)
        assert record[len(head) : len(head) + 1] in (b",", b"}")


def reference_record(node: Node) -> bytes:
    """The record as the format describes it, built with json.dumps."""

    def name(record: dict[str, object], field: str, value: str) -> None:
        try:
            value.encode("utf-8")
            record[field] = value
        except UnicodeEncodeError:
            record[field + "64"] = base64.b64encode(os.fsencode(value)).decode("ascii")

    record: dict[str, object] = {}
    name(record, "path", node.path)
    record["type"] = node.type.value
    record["mode"] = node.mode
    defaults = {"uid": 0, "gid": 0, "user": None, "group": None, "size": 0, "inode": 0}
    defaults |= {"device": 0, "links": 1, "rdev": 0, "hardlink": None}
    for field, default in defaults.items():
        if getattr(node, field) != default:
            record[field] = getattr(node, field)
    record["mtime"] = node.mtime_ns
    record["ctime"] = node.ctime_ns
    if node.target is not None:
        name(record, "target", node.target)
    if node.content:
        record["content"] = [e.hex() if isinstance(e, bytes) else e for e in node.content]
    if node.xattrs:
        record["xattrs"] = [[k, base64.b64encode(v).decode("ascii")] for k, v in node.xattrs]
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def test_a_tree_stream_dropped_half_read_is_freed_at_once(repo: Repository, tree: Path) -> None:
    """No reference cycle: its fetching threads stop now, not in some later collection."""
    snapshot = repo.backup([tree])
    gc.disable()
    try:
        stream = repo.nodes(snapshot)
        next(stream)
        ref = weakref.ref(stream)
        del stream
        assert ref() is None
    finally:
        gc.enable()


def test_a_backup_frees_its_files_as_it_records_them(repo: Repository, tmp_path: Path) -> None:
    """No reference cycle keeps the tasks, their files and results until a collection."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(600):
        (src / f"f{i}").write_bytes(os.urandom(i * 7))
    (src / "large").write_bytes(os.urandom(3 * MiB))
    gc.collect()
    gc.disable()
    try:
        snapshot = repo.backup([src])
        left = [o for o in gc.get_objects() if isinstance(o, (fileworker_module.Task, Entry))]
    finally:
        gc.enable()
    assert snapshot.stats.files_new == 601
    assert left == []


def make_mixed_directory(root: Path) -> None:
    """Small files in a row broken by every other kind of entry, in one directory."""
    root.mkdir(parents=True)
    rng = random.Random(11)
    for i in range(700):
        name = root / f"n{i:04d}"
        kind = i % 50
        if kind == 7:
            name.write_bytes(b"")
        elif kind == 13:
            name.mkdir()
            (name / "inside").write_bytes(rng.randbytes(100))
        elif kind == 21:
            name.write_bytes(rng.randbytes(2 * MiB + i))
        elif kind == 29:
            os.symlink(f"n{i - 1:04d}", name)
        elif kind == 31:
            os.link(root / f"n{i - 4:04d}", name)  # a small file, now with two names
        else:
            name.write_bytes(rng.randbytes(rng.randint(1, 9000)))


def test_new_small_files_in_a_row_keep_their_order_and_their_errors(
    repo: Repository, tmp_path: Path
) -> None:
    """Recorded together, new small files stay in the tree's order, each with its own error."""
    src = tmp_path / "src"
    make_mixed_directory(src)

    def refuse(path: bytes) -> int:
        if path.endswith((b"/n0100", b"/n0333")):
            raise PermissionError(13, "Permission denied")
        return open_for_reading(path)

    snapshot = run_backup(repo, [src], parts=BackupParts(files=SourceFiles(open=refuse)))
    refused = {f"{src}/n0100".lstrip("/"), f"{src}/n0333".lstrip("/")}
    assert sorted(e.path for e in snapshot.errors) == sorted(refused)
    walked = [e.path for e in Walker([os.fsencode(src)], lambda *_: None)]
    nodes = list(repo.nodes(snapshot))
    assert [n.path for n in nodes] == [p for p in walked if p not in refused]
    files = [n for n in nodes if n.type is NodeType.FILE]
    # all but the directories and symlinks, their files in, less the two refused
    assert snapshot.stats.files_new == len(files) == 700 - 14 - 14 + 14 - 2
    out = tmp_path / "out"
    repo.restore(snapshot.id, out)
    restored = describe(out / str(src).lstrip("/"))
    expected = describe(src)
    assert {k for k in expected if k not in restored} == {b"n0100", b"n0333"}
    assert restored == {k: v for k, v in expected.items() if k in restored}


def test_new_small_files_after_a_parent_are_recorded_as_without_one(
    repo: Repository, tmp_path: Path
) -> None:
    """New files merged with a parent's records (not past its end) go in groups too."""
    src = tmp_path / "src"
    make_mixed_directory(src / "a-old")
    first = repo.backup([src])
    make_mixed_directory(src / "b-new")
    (src / "c-last").write_bytes(b"after the new directory")
    second = repo.backup([src])
    assert second.stats.files_unchanged == first.stats.files_new
    reference = repo.backup([src], use_parent=False)
    assert list(repo.nodes(second)) == list(repo.nodes(reference))


class _CountingStore(MemoryStore):
    """A memory store that records the ranged reads of data packs."""

    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[tuple[str, int, int]] = []

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if key.startswith("data/"):
            self.ranges.append((key, offset, length))
        return super().get_range(key, offset, length)


def test_blobs_of_a_pack_close_together_are_read_with_one_request(tmp_path: Path) -> None:
    """A restore of every other small file reads across the gaps up to MAX_GAP, not beyond."""
    store = _CountingStore()
    repo = Repository.init(store, "secret", kdf=FAST_KDF, pack_size=4 * MiB)
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(3)
    sizes = {"a": 3000, "b": 5000, "c": 7000, "d": restorer_module.MAX_GAP + 4096, "e": 100}
    for name, size in sizes.items():
        (src / name).write_bytes(rng.randbytes(size))
    snapshot = repo.backup([src])
    wanted = [str(src / name).lstrip("/") for name in ("a", "c", "e")]
    store.ranges.clear()
    stats = repo.restore(snapshot.id, tmp_path / "out", include=wanted)
    assert stats.errors == () and stats.files == 3
    out = restored(tmp_path / "out", src)
    assert sorted(p.name for p in out.iterdir()) == ["a", "c", "e"]
    for name in ("a", "c", "e"):
        assert (out / name).read_bytes() == (src / name).read_bytes()
    # a, b (dropped) and c in one read; d is too wide a gap, so e is a read of its own
    content = {n.name: n.content for n in repo.nodes(snapshot) if n.type is NodeType.FILE}
    location = repo.index.lookup(content["a"][0])
    assert location is not None
    reads = [r for r in store.ranges if r[0] == location.pack.key]
    assert len(reads) == 2
    first, second = sorted(reads, key=lambda r: r[1])
    assert first[2] >= sizes["a"] + sizes["b"] + sizes["c"]
    assert second[1] >= first[1] + first[2] + sizes["d"] and second[2] < 4096


def test_a_parent_another_writer_made_since_opening_is_read(tmp_path: Path) -> None:
    store = MemoryStore()
    first = Repository.init(store, "pw", kdf=KdfParams(n=1 << 10))
    second = Repository.open(store, "pw")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(random.Random(1).randbytes(100_000))
    made = first.backup([src])
    (src / "b").write_text("new\n")
    later = second.backup([src])
    assert later.parent == made.id, "the other writer's snapshot is the parent"
    assert later.stats.files_unchanged == 1
    second.restore(later.id, tmp_path / "out")
    assert (restored(tmp_path / "out", src) / "a").read_bytes() == (src / "a").read_bytes()
