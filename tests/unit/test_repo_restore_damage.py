"""A restore goes on past damage, and never leaves a partial file under a final name."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from haprotect.cli.main import app
from haprotect.model.progress import ProgressEvent
from haprotect.model.snapshot import Node, NodeType, Snapshot
from haprotect.repo import KdfParams, Repository, RestoreOptions
from haprotect.repo.errors import RestoreError
from haprotect.repo.format.config import ChunkerParams
from haprotect.repo.format.index import BlobLocation
from haprotect.storage.local import LocalStore
from haprotect.testing.repo import MiB, describe, write_crafted_snapshot

ONE = RestoreOptions(processes=1)
SHARED = RestoreOptions(processes=3, segment=4096)
PARTIAL = ".haprotect-partial-"
runner = CliRunner()


SMALL_CHUNKS = ChunkerParams(min_size=128 * 1024, avg_size=256 * 1024, max_size=MiB)
"""Whatever the repository's random chunker seed, every big file has several chunks."""


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    store = LocalStore(tmp_path / "repo")
    return Repository.init(
        store, "secret", kdf=KdfParams(n=1 << 10), chunker=SMALL_CHUNKS, pack_size=4 * MiB
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    make_tree(root)
    return root


@pytest.fixture
def snapshot(repo: Repository, tree: Path) -> Snapshot:
    return repo.backup([tree])


def make_tree(root: Path) -> None:
    """Many small files in directories with their own modes and times, and a few large ones."""
    rng = random.Random(7)
    for d in range(4):
        sub = root / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(30):
            (sub / f"f{f:02d}").write_bytes(rng.randbytes(rng.choice([0, 300, 5000, 40_000])))
    for name, size in (("big-a", 3 * MiB + 5), ("big-b", 5 * MiB), ("big-c", 2 * MiB + 4097)):
        (root / "d3" / name).write_bytes(rng.randbytes(size))
    os.link(root / "d3" / "big-b", root / "d0" / "link-to-big-b")
    for d, mode in (("d0", 0o750), ("d1", 0o711), ("d2", 0o555)):
        os.chmod(root / d, mode)
        os.utime(root / d, ns=(1_500_000_000_000_000_001, 1_500_000_000_000_000_001))


def file_node(repo: Repository, snapshot: Snapshot, name: str) -> Node:
    return next(n for n in repo.nodes(snapshot) if n.path.endswith("/" + name))


def chunks_of(repo: Repository, node: Node) -> list[tuple[int, bytes, BlobLocation]]:
    """(offset in the file, chunk id, location) of each chunk of ``node``."""
    out, offset = [], 0
    for entry in node.content:
        if isinstance(entry, int):
            offset += entry
            continue
        location = repo.index.lookup(entry)
        assert location is not None
        out.append((offset, entry, location))
        offset += location.raw_length
    return out


def flip_a_bit(repo_dir: Path, location: BlobLocation) -> None:
    pack = repo_dir / location.pack.key
    data = bytearray(pack.read_bytes())
    data[location.offset + location.length // 2] ^= 0x10
    os.chmod(pack, 0o600)
    pack.write_bytes(bytes(data))


def restored(out: Path, source: Path) -> Path:
    return out / str(source).lstrip("/")


def without(seen: dict[bytes, Any], *names: str) -> dict[bytes, Any]:
    return {k: v for k, v in seen.items() if k not in {os.fsencode(n) for n in names}}


def zeroed(data: bytes, start: int, end: int) -> bytes:
    return data[:start] + bytes(end - start) + data[end:]


def partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(PARTIAL)]


@pytest.mark.parametrize("options", [ONE, SHARED], ids=["one-process", "three-processes"])
def test_a_flipped_bit_costs_only_the_bytes_of_its_chunk_in_its_file(
    repo: Repository, tree: Path, snapshot: Snapshot, tmp_path: Path, options: RestoreOptions
) -> None:
    big = file_node(repo, snapshot, "big-a")
    chunks = chunks_of(repo, big)
    assert len(chunks) > 1
    offset, chunk_id, location = chunks[1]
    flip_a_bit(tmp_path / "repo", location)

    stats = repo.restore(snapshot.id, tmp_path / "out", options=options)

    out = restored(tmp_path / "out", tree)
    end = offset + location.raw_length
    ((lost,),) = [stats.lost]
    assert lost.path == big.path
    assert [(r.start, r.end, r.chunk, r.pack) for r in lost.ranges] == [
        (offset, end, chunk_id.hex(), location.pack.id)
    ]
    assert lost.ranges[0].reason == "failed authentication: it was modified or corrupted"
    assert lost.kept_as == big.path + ".haprotect-damaged"
    assert [e.path for e in stats.errors] == [big.path]
    assert f"lost bytes {offset}-{end - 1}" in stats.errors[0].message
    # every other file is whole, the damaged one is only under its damaged name
    assert not (out / "d3" / "big-a").exists()
    kept = out / "d3" / "big-a.haprotect-damaged"
    assert kept.read_bytes() == zeroed((tree / "d3" / "big-a").read_bytes(), offset, end)
    got = without(describe(out), "d3/big-a.haprotect-damaged")
    assert got == without(describe(tree), "d3/big-a")
    assert not partials(out)
    files = sum(1 for n in repo.nodes(snapshot) if n.type is NodeType.FILE)
    assert stats.files == files - 1


def test_the_damage_is_listed_and_exit_10_through_the_cli(
    repo: Repository, tree: Path, snapshot: Snapshot, tmp_path: Path
) -> None:
    small = next(n for n in repo.nodes(snapshot) if n.type is NodeType.FILE and n.size == 5000)
    rel = small.path.split("/src/", 1)[1]
    ((_, chunk_id, location),) = chunks_of(repo, small)
    flip_a_bit(tmp_path / "repo", location)
    env = {"HAPROTECT_PASSWORD": "secret"}
    url = str(tmp_path / "repo")
    for processes in ("1", "2"):
        out = tmp_path / f"out-{processes}"
        args = ["repo", "restore", url, "latest", "--target", str(out), "--processes", processes]
        text = runner.invoke(app, args, env=env, catch_exceptions=False)
        assert text.exit_code == 10, text.output
        line = (
            f"lost: /{small.path} bytes 0-{small.size - 1} (chunk {chunk_id.hex()[:12]}… in "
            f"pack {location.pack.id[:12]}…: failed authentication: it was modified or "
            f"corrupted); the rest is in {out}/{small.path}.haprotect-damaged"
        )
        assert line in text.stdout.splitlines(), text.stdout
        assert "1 file lost data" in text.stdout
        whole = restored(out, tree)
        assert without(describe(whole), rel + ".haprotect-damaged") == without(describe(tree), rel)
    as_json = runner.invoke(
        app,
        ["repo", "restore", url, "latest", "--target", str(tmp_path / "j"), "--json"],
        env=env,
        catch_exceptions=False,
    )
    assert as_json.exit_code == 10
    summary = json.loads(as_json.stdout.splitlines()[-1])
    assert summary["stats"]["lost"] == [
        {
            "path": small.path,
            "ranges": [
                {
                    "start": 0,
                    "end": small.size,
                    "chunk": chunk_id.hex(),
                    "pack": location.pack.id,
                    "reason": "failed authentication: it was modified or corrupted",
                    "chunks": 1,
                }
            ],
            "kept_as": small.path + ".haprotect-damaged",
        }
    ]


@pytest.mark.parametrize("options", [ONE, SHARED], ids=["one-process", "three-processes"])
def test_a_missing_pack_costs_the_files_that_used_it(
    repo: Repository, tree: Path, snapshot: Snapshot, tmp_path: Path, options: RestoreOptions
) -> None:
    nodes = [n for n in repo.nodes(snapshot) if n.type is NodeType.FILE and n.content]
    by_pack: dict[str, set[str]] = {}
    for node in nodes:
        for _, _, location in chunks_of(repo, node):
            by_pack.setdefault(location.pack.id, set()).add(node.path)
    assert len(by_pack) > 1
    gone = min(by_pack, key=lambda p: len(by_pack[p]))
    pack = next(loc.pack for n in nodes for _, _, loc in chunks_of(repo, n) if loc.pack.id == gone)
    (tmp_path / "repo" / pack.key).unlink()

    stats = repo.restore(snapshot.id, tmp_path / "out", options=options)

    # d0/link-to-big-b comes first in the tree: d3/big-b is the later name
    later = {"d3/big-b"}
    hit = {p.split("/src/", 1)[1] for p in by_pack[gone]}
    assert {f.path.split("/src/", 1)[1] for f in stats.lost} == hit
    assert {e.path.split("/src/", 1)[1] for e in stats.errors} == hit
    for item in stats.lost:
        assert {(r.pack, r.reason) for r in item.ranges} == {(gone, "the pack is missing")}
    out = restored(tmp_path / "out", tree)
    damaged = {p + ".haprotect-damaged" for p in hit - later}
    assert {f.kept_as.split("/src/", 1)[1] for f in stats.lost if f.kept_as} == damaged
    assert without(describe(out), *damaged) == without(describe(tree), *hit)


def test_a_chunk_the_index_does_not_know_costs_its_span(
    repo: Repository, tree: Path, snapshot: Snapshot, tmp_path: Path
) -> None:
    """Without the chunk's length, its bytes are placed by those of the chunks around it."""
    nodes = list(repo.nodes(snapshot))
    big = file_node(repo, snapshot, "big-a")
    chunks = chunks_of(repo, big)
    at, _, _ = chunks[1]
    unknown = os.urandom(32)
    gap = 100_000
    content = (*big.content[:1], unknown, *big.content[1:])
    longer = replace(big, content=content, size=big.size + gap)
    crafted = write_crafted_snapshot(repo, [longer if n.path == big.path else n for n in nodes])

    stats = repo.restore(crafted.id, tmp_path / "out")

    ((lost,),) = [stats.lost]
    assert [(r.start, r.end, r.chunk, r.pack, r.reason) for r in lost.ranges] == [
        (at, at + gap, unknown.hex(), None, "not in the index")
    ]
    data = (tree / "d3" / "big-a").read_bytes()
    out = restored(tmp_path / "out", tree)
    assert (out / "d3" / "big-a.haprotect-damaged").read_bytes() == (
        data[:at] + bytes(gap) + data[at:]
    )
    assert not (out / "d3" / "big-a").exists()
    assert without(describe(out), "d3/big-a.haprotect-damaged") == without(
        describe(tree), "d3/big-a"
    )


class Interrupt:
    """A progress sink that interrupts the restore once some files are done."""

    def __init__(self, after: int) -> None:
        self.after = after

    def __call__(self, event: ProgressEvent) -> None:
        if event.files_done >= self.after:
            raise KeyboardInterrupt


def assert_no_partial_file_under_a_final_name(out: Path, tree: Path) -> None:
    for path in out.rglob("*"):
        assert not path.name.startswith(PARTIAL), path
        if path.is_file():
            source = tree / path.relative_to(out)
            assert path.read_bytes() == source.read_bytes(), path
            assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(source.stat().st_mode)


def assert_directories_as_in_the_source(out: Path, tree: Path) -> None:
    for path in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        source = os.stat(tree / path.relative_to(out))
        st = os.stat(path)
        assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (
            stat.S_IMODE(source.st_mode),
            source.st_mtime_ns,
        ), path


@pytest.mark.parametrize("options", [ONE, SHARED], ids=["one-process", "three-processes"])
def test_an_interrupted_restore_leaves_no_partial_file_and_sets_directory_modes(
    repo: Repository, tree: Path, snapshot: Snapshot, tmp_path: Path, options: RestoreOptions
) -> None:
    target = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        repo.restore(
            snapshot.id, target, on_progress=Interrupt(1), options=replace(options, workers=2)
        )
    out = restored(target, tree)
    assert out.is_dir()
    assert_directories_as_in_the_source(out, tree)
    if options.processes == 1:
        assert_no_partial_file_under_a_final_name(out, tree)
    else:
        # the processes killed with the primary leave their files under temporary names
        for path in out.rglob("*"):
            if path.is_file() and not path.name.startswith(PARTIAL):
                assert path.read_bytes() == (tree / path.relative_to(out)).read_bytes(), path


def test_the_next_restore_removes_what_a_killed_one_left(
    repo: Repository, tree: Path, snapshot: Snapshot, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    out = restored(target, tree)
    (out / "d3").mkdir(parents=True)
    (out / "d3" / "big-a").write_bytes(b"")  # what an earlier kind of restore left
    (out / "d3" / f"{PARTIAL}4d2-7").write_bytes(b"half a file")
    os.makedirs(target / "elsewhere")
    (target / "elsewhere" / f"{PARTIAL}4d2-8").write_bytes(b"not the restore's")
    for options in (ONE, SHARED):
        stats = repo.restore(snapshot.id, target, options=options)
        assert stats.errors == ()
        assert describe(out) == describe(tree)
        assert not partials(out)
        assert stats.leftovers_removed == 1
        os.chmod(out / "d2", 0o755)
        (out / "d2" / f"{PARTIAL}4d2-9").write_bytes(b"half a file")
        os.chmod(out / "d2", 0o555)
    assert (target / "elsewhere" / f"{PARTIAL}4d2-8").exists()


def test_a_killed_restore_leaves_only_whole_files_under_final_names(
    repo: Repository, tree: Path, snapshot: Snapshot, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    script = f"""
import os, signal
from haprotect.repo import Repository, RestoreOptions
from haprotect.storage.local import LocalStore
repo = Repository.open(LocalStore({str(tmp_path / "repo")!r}), "secret")
def kill(event):
    if event.files_done:
        os.kill(os.getpid(), signal.SIGKILL)
repo.restore({snapshot.id!r}, {str(target)!r}, on_progress=kill,
             options=RestoreOptions(processes=1, workers=2))
"""
    killed = subprocess.run([sys.executable, "-c", script], check=False)
    assert killed.returncode == -signal.SIGKILL
    out = restored(target, tree)
    for path in out.rglob("*"):
        if path.is_file() and not path.name.startswith(PARTIAL):
            assert path.read_bytes() == (tree / path.relative_to(out)).read_bytes(), path
    left = len(partials(out))
    stats = repo.restore(snapshot.id, target, options=ONE)
    assert stats.errors == () and stats.leftovers_removed == left
    assert describe(out) == describe(tree)


@pytest.mark.parametrize("options", [ONE, SHARED], ids=["one-process", "three-processes"])
def test_a_restore_refused_while_making_directories_still_sets_their_modes(
    repo: Repository, tree: Path, snapshot: Snapshot, tmp_path: Path, options: RestoreOptions
) -> None:
    """Several processes make every directory first: a failure then leaves none at 0700."""
    nodes = list(repo.nodes(snapshot))
    escaping = replace(nodes[0], path="zzz/../escaped", type=NodeType.DIR)
    crafted = write_crafted_snapshot(repo, [*nodes, escaping])
    target = tmp_path / "out"
    with pytest.raises(RestoreError, match=r"refusing path 'zzz/\.\./escaped'"):
        repo.restore(crafted.id, target, options=options)
    assert_directories_as_in_the_source(restored(target, tree), tree)


def test_an_include_whose_own_record_is_lost_restores_what_lies_below_it(
    repo: Repository, tree: Path, snapshot: Snapshot, tmp_path: Path
) -> None:
    """A directory's record lost with its tree chunk: the files below it are still there."""
    d1 = str(tree / "d1").lstrip("/")
    crafted = write_crafted_snapshot(repo, [n for n in repo.nodes(snapshot) if n.path != d1])
    stats = repo.restore(crafted.id, tmp_path / "out", include=[d1], options=ONE)
    assert stats.files == 30
    out = restored(tmp_path / "out", tree)
    for path in (tree / "d1").iterdir():
        assert (out / "d1" / path.name).read_bytes() == path.read_bytes()
