"""Restores shared by several processes: same tree, progress of all, failures reported."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from haprotect.model.progress import ProgressEvent
from haprotect.model.snapshot import Node, NodeType, RestoreStats
from haprotect.repo import KdfParams, Repository, RestoreOptions
from haprotect.repo.errors import IntegrityError, RestoreError
from haprotect.repo.restore import processes
from haprotect.repo.restore.options import Share
from haprotect.repo.restore.processes import RestoreParts
from haprotect.repo.restore.target import Target
from haprotect.storage.local import LocalStore
from haprotect.storage.memory import MemoryStore
from haprotect.storage.wrappers import RetryingStore
from haprotect.testing.repo import MiB, describe, make_awkward_tree

# small segments spread even a small tree over the processes
SHARED = RestoreOptions(processes=3, segment=4096)


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    store = LocalStore(tmp_path / "repo")
    return Repository.init(store, "secret", kdf=KdfParams(n=1 << 10), pack_size=4 * MiB)


def restored(target: Path, source: Path) -> Path:
    return target / str(source).lstrip("/")


def first_names(nodes: Iterable[Node]) -> list[Node]:
    """The regular files a restore writes: every file but later names of hard links."""
    seen: set[str] = set()
    files = []
    for node in nodes:
        if node.type is not NodeType.FILE or node.hardlink in seen:
            continue
        if node.hardlink is not None:
            seen.add(node.hardlink)
        files.append(node)
    return files


def make_many_files(root: Path) -> None:
    rng = random.Random(23)
    for d in range(3):
        sub = root / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(40):
            (sub / f"f{f:02d}").write_bytes(rng.randbytes(rng.choice([0, 100, 5000, 20_000])))
    os.link(root / "d2" / "f05", root / "d0" / "link-to-d2-f05")
    os.link(root / "d0" / "f01", root / "d2" / "link-to-d0-f01")


def test_only_local_stores_are_shared_by_processes(tmp_path: Path) -> None:
    options = RestoreOptions(processes=3)
    local = LocalStore(tmp_path / "r")
    assert processes.process_count(options, local) == 3
    assert processes.process_count(options, RetryingStore(local)) == 3
    assert processes.process_count(options, MemoryStore()) == 1


def test_an_awkward_tree_comes_out_the_same(repo: Repository, tmp_path: Path) -> None:
    tree = tmp_path / "src"
    make_awkward_tree(tree)
    make_many_files(tree / "many")
    snapshot = repo.backup([tree])
    events: list[ProgressEvent] = []
    stats = repo.restore(snapshot.id, tmp_path / "out", on_progress=events.append, options=SHARED)
    assert stats.errors == ()
    out = restored(tmp_path / "out", tree)
    assert describe(out) == describe(tree)
    for first, second in (("d2/f05", "d0/link-to-d2-f05"), ("d0/f01", "d2/link-to-d0-f01")):
        a, b = os.stat(out / "many" / first), os.stat(out / "many" / second)
        assert (a.st_ino, a.st_nlink) == (b.st_ino, 2)
    alone = repo.restore(snapshot.id, tmp_path / "alone", options=RestoreOptions(processes=1))
    assert stats == alone
    assert stats.files == sum(1 for n in repo.nodes(snapshot) if n.type is NodeType.FILE)
    assert events[-1].finished and events[-1].files_done == stats.files


def test_the_work_is_shared_by_segments(repo: Repository, tmp_path: Path) -> None:
    """Each process writes the files of its own segments (checked on who put them in place)."""
    tree = tmp_path / "src"
    make_many_files(tree)
    snapshot = repo.backup([tree])
    log = os.open(tmp_path / "created.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    out = tmp_path / "out"

    class RecordingTarget(Target):
        def place(self, parent: int, temp: bytes, name: bytes) -> None:
            path = Path(os.readlink(f"/proc/self/fd/{parent}"), os.fsdecode(name))
            os.write(log, f"{os.getpid()} {path.relative_to(out)}\n".encode())
            super().place(parent, temp, name)

    parts = RestoreParts(target=RecordingTarget)
    stats = repo.restore(snapshot.id, out, options=SHARED, parts=parts)
    os.close(log)
    assert stats.errors == ()
    creators = {}
    for line in (tmp_path / "created.log").read_text().splitlines():
        pid, path = line.split(" ", 1)
        creators[path] = int(pid)
    position, expected = 0, {}
    for node in first_names(repo.nodes(snapshot)):
        expected[node.path] = position // SHARED.segment % SHARED.processes
        position += node.size
    assert set(creators) == set(expected)
    by_pid: dict[int, set[int]] = {}
    for path, part in expected.items():
        by_pid.setdefault(creators[path], set()).add(part)
    assert len(by_pid) == SHARED.processes, "every process wrote files"
    assert all(len(parts) == 1 for parts in by_pid.values()), "one share per process"
    assert os.getpid() in by_pid and by_pid[os.getpid()] == {0}


def test_a_damaged_blob_in_another_process_is_reported_with_its_file(
    repo: Repository, tmp_path: Path
) -> None:
    tree = tmp_path / "src"
    tree.mkdir()
    for name in ("a", "b", "c"):
        (tree / name).write_bytes(os.urandom(64 * 1024))
    snapshot = repo.backup([tree])
    c = next(n for n in repo.nodes(snapshot) if n.path.endswith("/c"))
    assert Share(2, 3, SHARED.segment).owns(2 * 64 * 1024)
    location = repo.index.lookup(c.content[0])  # type: ignore[arg-type]
    assert location is not None
    pack = tmp_path / "repo" / location.pack.key
    data = bytearray(pack.read_bytes())
    data[location.offset + 20] ^= 0x01
    os.chmod(pack, 0o600)
    pack.write_bytes(bytes(data))
    stats = repo.restore(snapshot.id, tmp_path / "out", options=SHARED)
    assert [(f.path, [(r.start, r.end, r.pack) for r in f.ranges]) for f in stats.lost] == [
        (c.path, [(0, 64 * 1024, location.pack.id)])
    ]
    assert [e.path for e in stats.errors] == [c.path]
    out = restored(tmp_path / "out", tree)
    assert sorted(os.listdir(out)) == ["a", "b", "c.haprotect-damaged"]
    for name in ("a", "b"):
        assert (out / name).read_bytes() == (tree / name).read_bytes()


def _fail(*args: object) -> RestoreStats:
    raise IntegrityError("pack 77e0 failed authentication", hint="run check")


def _die(*args: object) -> RestoreStats:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("part", "error", "message"),
    [
        (_fail, IntegrityError, "pack 77e0 failed authentication"),
        (_die, RestoreError, r"restore process \d \(pid \d+\) died: killed by signal 9"),
    ],
    ids=["an-error", "a-death"],
)
def test_a_process_that_fails_or_dies_fails_the_restore(
    repo: Repository,
    tmp_path: Path,
    part: Any,
    error: type[Exception],
    message: str,
) -> None:
    tree = tmp_path / "src"
    make_many_files(tree)
    snapshot = repo.backup([tree])
    with pytest.raises(error, match=message):
        repo.restore(snapshot.id, tmp_path / "out", options=SHARED, parts=RestoreParts(share=part))


def test_a_subset_is_restored_alone(repo: Repository, tmp_path: Path) -> None:
    tree = tmp_path / "src"
    make_many_files(tree)
    snapshot = repo.backup([tree])
    rel = str(tree).lstrip("/")
    stats = repo.restore(snapshot.id, tmp_path / "out", include=[f"{rel}/d1"], options=SHARED)
    assert stats.errors == () and stats.files == 40
    out = restored(tmp_path / "out", tree)
    assert sorted(os.listdir(out)) == ["d1"]
    assert describe(out / "d1") == describe(tree / "d1")


def test_a_hard_link_whose_first_name_fails_loses_nothing_silently(
    repo: Repository, tmp_path: Path
) -> None:
    """Every process keeps the same shares when a file of one of them cannot be made."""
    tree = tmp_path / "src"
    rng = random.Random(1)
    (tree / "d0").mkdir(parents=True)
    (tree / "d1").mkdir()
    (tree / "d0" / "a").write_bytes(rng.randbytes(5000))
    for d, prefix in (("d0", "f"), ("d1", "g")):
        for i in range(60):
            (tree / d / f"{prefix}{i:02d}").write_bytes(rng.randbytes(3000))
    os.link(tree / "d0" / "a", tree / "d1" / "b-link")
    snapshot = repo.backup([tree])

    class NoSpaceForA(Target):
        def place(self, parent: int, temp: bytes, name: bytes) -> None:
            if name == b"a":
                raise OSError(errno.ENOSPC, "No space left on device")
            super().place(parent, temp, name)

    parts = RestoreParts(target=NoSpaceForA)
    stats = repo.restore(snapshot.id, tmp_path / "out", options=SHARED, parts=parts)
    out = restored(tmp_path / "out", tree)
    failed = {e.path.rsplit("/", 2)[-2] + "/" + e.path.rsplit("/", 1)[-1] for e in stats.errors}
    assert {"d0/a", "d1/b-link"} <= failed
    assert not (out / "d0" / "a").exists() and not (out / "d1" / "b-link").exists()
    assert not [p for p in out.rglob("*") if p.name.startswith(".haprotect-partial-")]
    for path in tree.rglob("*"):
        if path.is_file():
            rel = str(path.relative_to(tree))
            there = out / rel
            assert rel in failed or (there.exists() and there.read_bytes() == path.read_bytes()), (
                rel
            )


def test_the_other_processes_end_with_the_primary(tmp_path: Path) -> None:
    """A primary killed outright takes its helpers with it: nothing writes on behind it."""
    script = tmp_path / "primary.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, random, time
            from pathlib import Path
            from haprotect.repo import KdfParams, Repository, RestoreOptions
            from haprotect.repo.restore import processes
            from haprotect.storage.local import LocalStore
            base = Path({str(tmp_path)!r})
            src = base / "src"
            src.mkdir()
            for i in range(30):
                (src / f"f{{i:02d}}").write_bytes(random.randbytes(3000))
            repo = Repository.init(LocalStore(base / "repo"), "s", kdf=KdfParams(n=1 << 10))
            snapshot = repo.backup([src])
            def slow(*args):
                (base / f"helper-{{os.getpid()}}").touch()
                time.sleep(60)
                return processes.restore_share(*args)
            options = RestoreOptions(processes=3, segment=4096)
            parts = processes.RestoreParts(share=slow)
            repo.restore(snapshot.id, base / "out", options=options, parts=parts)
            """
        )
    )
    primary = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("helper-*"))) < 2:
            assert time.monotonic() < deadline, "the helpers did not start"
            assert primary.poll() is None, "the primary ended early"
            time.sleep(0.05)
        helpers = [int(p.name.split("-")[1]) for p in tmp_path.glob("helper-*")]
        primary.kill()
        primary.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in helpers):
            assert time.monotonic() < deadline, f"helpers {helpers} outlived the primary"
            time.sleep(0.05)
    finally:
        primary.kill()
        primary.wait()


def _alive(pid: int) -> bool:
    """Running (not a zombie: its parent died, so init reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
