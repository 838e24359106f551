"""Check finds each kind of damage and names what it affects."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from haprotect.errors import UsageError
from haprotect.model.progress import Phase, ProgressEvent
from haprotect.model.snapshot import Node, NodeType
from haprotect.repo import KdfParams, Repository
from haprotect.repo.errors import RepositoryError
from haprotect.repo.format.index import INDEX_PREFIX
from haprotect.repo.format.snapshots import SNAPSHOTS_PREFIX
from haprotect.repo.lock import Locker
from haprotect.repo.maintenance.check import CheckReport, Finding, Severity, Subset
from haprotect.storage.memory import MemoryStore
from haprotect.testing.repo import MiB, write_crafted_snapshot


class Fixture:
    """Two snapshots of a tree; ``victim`` is in both, ``extra`` only in the second."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = MemoryStore()
        self.repo = Repository.init(self.store, "pw", kdf=KdfParams(n=1 << 10), pack_size=MiB)
        self.src = tmp_path / "src"
        self.src.mkdir()
        rng = random.Random(2)
        for i in range(5):
            (self.src / f"other{i}").write_bytes(rng.randbytes(200_000))
        self.victim = self.src / "victim.bin"
        self.victim.write_bytes(rng.randbytes(1_500_000))
        self.first = self.repo.backup([self.src])
        (self.src / "extra").write_bytes(rng.randbytes(2 * MiB))
        self.second = self.repo.backup([self.src])

    def chunk_of(self, name: str) -> bytes:
        node = next(n for n in self.repo.nodes(self.second) if n.path.endswith("/" + name))
        chunk = node.content[0]
        assert isinstance(chunk, bytes)
        return chunk

    def reopen(self) -> Repository:
        return Repository.open(self.store, "pw", lenient_index=True)


@pytest.fixture
def fx(tmp_path: Path) -> Fixture:
    return Fixture(tmp_path)


def errors(report: CheckReport) -> list[Finding]:
    assert not report.ok
    return report.errors


def test_a_whole_repository_is_clean(fx: Fixture) -> None:
    events: list[ProgressEvent] = []
    report = fx.repo.check(read_data=True, on_progress=events.append)
    assert report.ok and report.findings == ()
    assert report.snapshots == 2 and report.packs_read == report.packs > 0
    assert report.bytes_read == sum(b.size for b in fx.store.list("data/"))
    assert events and events[-1].finished and {e.phase for e in events} == {Phase.CHECK}
    assert report.to_json()["ok"] is True


def test_a_flipped_bit_in_a_pack_names_the_pack_snapshots_and_file(fx: Fixture) -> None:
    chunk = fx.chunk_of("victim.bin")
    where = fx.repo.index.lookup(chunk)
    assert where is not None
    data = bytearray(fx.store.get(where.pack.key))
    data[where.offset + 100] ^= 0x10
    fx.store.put(where.pack.key, bytes(data))
    assert fx.repo.check().ok, "the structure is intact: only reading the data finds it"
    (finding,) = errors(fx.repo.check(read_data=True))
    assert finding.kind == "damaged-data" and finding.pack == where.pack.id
    assert "does not match its id" in finding.message and "1 of" in finding.message
    assert set(finding.snapshots) == {fx.first.id, fx.second.id}
    victim = f"/{str(fx.victim).lstrip('/')}"
    assert set(finding.files) == {f"{fx.first.short_id}:{victim}", f"{fx.second.short_id}:{victim}"}
    assert "1 chunks are lost, affecting 2 snapshots and 2 files" in finding.message


def test_a_missing_pack_is_an_error_naming_what_it_held(fx: Fixture) -> None:
    chunk = fx.chunk_of("extra")
    where = fx.repo.index.lookup(chunk)
    assert where is not None
    fx.store.delete(where.pack.key)
    report = fx.repo.check()
    (finding,) = errors(report)
    assert finding.kind == "missing-pack" and finding.pack == where.pack.id
    assert f"pack {where.pack.id} is missing" in finding.message
    assert finding.snapshots == (fx.second.id,), "only the second snapshot has extra"
    assert any(f.endswith("/extra") for f in finding.files)


def test_a_truncated_index_blob_is_reported_with_what_it_affects(fx: Fixture) -> None:
    names = sorted(b.key for b in fx.store.list(INDEX_PREFIX))
    assert len(names) == 2
    first_index = names[0]
    blob = fx.store.get(first_index)
    fx.store.put(first_index, blob[: len(blob) // 2])
    opened = Repository.open(fx.store, "pw")
    assert list(opened.index_damage) == [first_index], "skipped, not fatal"
    repo = fx.reopen()
    assert list(repo.index_damage) == [first_index]
    report = repo.check()
    kinds = [f.kind for f in report.errors]
    assert kinds[0] == "damaged-index" and "missing-chunks" in kinds
    damaged = report.errors[0]
    assert first_index.removeprefix(INDEX_PREFIX) in damaged.message
    assert "haprotect repo repair index" in damaged.message
    missing = next(f for f in report.errors if f.kind == "missing-chunks")
    assert missing.snapshots, "the snapshots that need the unindexed chunks are named"
    assert "packs no index lists" in missing.message and "repair index" in missing.message
    assert "no chunk a snapshot uses is known to be lost" in missing.message
    orphans = [f for f in report.findings if f.kind == "orphan-pack"]
    assert orphans and all(f.severity is Severity.INFO for f in orphans)


def test_a_truncated_pack_is_found_without_reading_data(fx: Fixture) -> None:
    chunk = fx.chunk_of("other0")
    where = fx.repo.index.lookup(chunk)
    assert where is not None
    data = fx.store.get(where.pack.key)
    fx.store.put(where.pack.key, data[:-100])
    (finding,) = errors(fx.repo.check())
    assert finding.kind == "damaged-pack" and "(truncated)" in finding.message
    assert finding.snapshots == (), "only the trailer was cut: every blob is still readable"
    fx.store.put(where.pack.key, data[: where.offset + 10])
    (finding,) = errors(fx.repo.check())
    assert set(finding.snapshots) == {fx.first.id, fx.second.id}
    assert any(f.endswith("/other0") for f in finding.files)


def test_a_damaged_trailer_is_found_without_reading_data(fx: Fixture) -> None:
    where = fx.repo.index.lookup(fx.chunk_of("other1"))
    assert where is not None
    data = bytearray(fx.store.get(where.pack.key))
    data[-10] ^= 0xFF
    fx.store.put(where.pack.key, bytes(data))
    (finding,) = errors(fx.repo.check())
    assert finding.kind == "damaged-pack" and "trailer" in finding.message
    assert finding.pack == where.pack.id
    assert "no chunk a snapshot uses is known to be lost" in finding.message


def test_a_damaged_snapshot_is_an_error_and_a_damaged_key_a_warning(fx: Fixture) -> None:
    key = SNAPSHOTS_PREFIX + fx.first.id
    blob = bytearray(fx.store.get(key))
    blob[-1] ^= 1
    fx.store.put(key, bytes(blob))
    fx.store.put("keys/" + "ee" * 32, b"{not json")
    report = fx.repo.check()
    assert {f.kind for f in errors(report)} == {"damaged-snapshot"}
    found = {f.kind: f for f in report.findings}
    assert found["damaged-key"].severity is Severity.WARNING
    assert found["damaged-snapshot"].snapshots == (fx.first.id,)


def test_a_damaged_tree_names_its_snapshot(fx: Fixture) -> None:
    tree_chunk = bytes.fromhex(fx.second.tree[0])
    where = fx.repo.index.lookup(tree_chunk)
    assert where is not None
    fx.store.delete(where.pack.key)
    report = fx.repo.check()
    kinds = {f.kind for f in report.errors}
    assert kinds == {"missing-pack", "damaged-tree"}
    tree = next(f for f in report.errors if f.kind == "damaged-tree")
    assert tree.snapshots == (fx.second.id,)


def test_stale_locks_are_info(fx: Fixture) -> None:
    Locker(fx.store, pid=(1 << 22) + 99, refresh_every=None).acquire(
        exclusive=False, operation="backup"
    )
    report = fx.repo.check()
    assert report.ok
    (finding,) = report.findings
    assert finding.kind == "stale-lock" and finding.severity is Severity.INFO
    assert "removed shared lock" in finding.message and "is gone" in finding.message
    assert fx.repo.check().findings == (), "it was removed"


def test_read_data_subsets(fx: Fixture) -> None:
    packs = sum(1 for _ in fx.store.list("data/"))
    parts = [fx.repo.check(subset=Subset.parse(f"{n}/3")).packs_read for n in (1, 2, 3)]
    assert sum(parts) == packs
    assert fx.repo.check(subset=Subset.parse("1%")).packs_read == 1
    assert fx.repo.check(subset=Subset.parse("100%")).packs_read == packs


@pytest.mark.parametrize("text", ["0%", "101%", "4/3", "0/2", "half", "1/x"])
def test_bad_subsets_are_one_line_errors(text: str) -> None:
    with pytest.raises(UsageError, match="is not a subset of packs"):
        Subset.parse(text)


def _node(path: str, kind: NodeType = NodeType.FILE) -> Node:
    return Node(path=path, type=kind, mode=0o644, mtime_ns=1, ctime_ns=1)


@pytest.mark.parametrize(
    ("paths", "needle"),
    [
        (["a", "a/../../evil"], "would escape the target"),
        (["a", "/etc/evil"], "would escape the target"),
        (["a", "a//b"], "would escape the target"),
        (["a", "b", "b"], "out of order"),
        (["b", "a"], "out of order"),
    ],
)
def test_check_refuses_paths_restore_refuses(
    fx: Fixture, tmp_path: Path, paths: list[str], needle: str
) -> None:
    nodes = [_node(p, NodeType.DIR if i == 0 else NodeType.FILE) for i, p in enumerate(paths)]
    crafted = write_crafted_snapshot(fx.repo, nodes)
    with pytest.raises(RepositoryError, match=needle):
        fx.repo.restore(crafted.id, tmp_path / "target")
    (finding,) = errors(fx.repo.check(read_data=True))
    assert finding.kind == "refused-path" and finding.snapshots == (crafted.id,)
    assert needle in finding.message and crafted.short_id in finding.message


def test_check_judges_paths_in_tree_chunks_shared_by_snapshots(fx: Fixture) -> None:
    """A tree chunk is parsed once, but judged in every snapshot that has it, by its own id."""
    many = [_node("d", NodeType.DIR)] + [_node(f"d/{i:06d}-{'x' * 60}") for i in range(5000)]
    many[100], many[101] = many[101], many[100]
    first = write_crafted_snapshot(fx.repo, many)
    second = write_crafted_snapshot(fx.repo, [*many, _node("e")])
    assert len(first.tree) > 2 and first.tree[0] == second.tree[0]
    found = errors(fx.repo.check())
    assert [f.kind for f in found] == ["refused-path", "refused-path"]
    assert {f.snapshots for f in found} == {(first.id,), (second.id,)}
    for finding in found:
        assert "out of order" in finding.message
        assert finding.snapshots[0][:8] in finding.message.split("(first:")[1]
