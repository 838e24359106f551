"""A prune killed at any moment leaves a consistent repository and loses no kept snapshot.

Two ways of killing it: in-process, a store that "dies" after the N-th write
or delete, for every N (each step boundary of prune, deterministically);
and real ``kill -9`` of a prune process at random moments.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from haprotect.repo import KdfParams, Repository
from haprotect.repo.lock import Locker
from haprotect.repo.maintenance.prune import PruneOptions
from haprotect.storage.base import BlobStore
from haprotect.storage.local import LocalStore
from haprotect.storage.memory import MemoryStore
from haprotect.storage.wrappers import StoreWrapper
from haprotect.testing.repo import MiB, Seen, describe

R = TypeVar("R")
NO_SUCH_PID = (1 << 22) + 4321  # above any pid_max: a process that is surely gone


class Crash(BaseException):
    """The process died: nothing after this reaches the store."""


class DyingStore(StoreWrapper):
    """Dies at the ``after``-th write or delete (counting from 0); then refuses everything."""

    def __init__(self, inner: BlobStore, after: int) -> None:
        super().__init__(inner)
        self.left = after
        self.dead = False
        self.writes = 0

    def _run(self, op: str, key: str, call: Callable[[], R]) -> R:
        if self.dead:
            raise Crash
        if op in ("put", "delete"):
            if self.left == 0:
                self.dead = True
                raise Crash
            self.left -= 1
            self.writes += 1
        return call()


def copy_of(store: MemoryStore) -> MemoryStore:
    clone = MemoryStore()
    for info in store.list():
        clone.put(info.key, store.get(info.key))
    return clone


def build(tmp_path: Path) -> tuple[MemoryStore, dict[str, dict[bytes, Seen]], Path]:
    """A repository with five snapshots, two of them forgotten."""
    store = MemoryStore()
    repo = Repository.init(store, "pw", kdf=KdfParams(n=1 << 10), pack_size=256 * 1024)
    rng = random.Random(11)
    src = tmp_path / "src"
    src.mkdir()
    kept: dict[str, dict[bytes, Seen]] = {}
    made = []
    for day in range(5):
        for i in range(8):
            (src / f"d{day}-{i}").write_bytes(rng.randbytes(rng.randint(1000, 60_000)))
        (src / f"big{day}").write_bytes(rng.randbytes(600_000))
        if day:
            for i in range(0, 8, 2):
                (src / f"d{day - 1}-{i}").unlink()
        snapshot = repo.backup([src])
        made.append(snapshot)
        kept[snapshot.id] = describe(src)
    for gone in (made[0], made[2]):
        repo.forget(gone.id)
        del kept[gone.id]
    return store, kept, src


def assert_whole(
    store: BlobStore, kept: dict[str, dict[bytes, Seen]], src: Path, out: Path
) -> None:
    repo = Repository.open(store, "pw")
    report = repo.check(read_data=True)
    assert report.ok, [f.message for f in report.errors]
    assert {s.id for s in repo.snapshots()} == set(kept)
    for snapshot_id, seen in kept.items():
        target = out / snapshot_id[:8]
        repo.restore(snapshot_id, target)
        assert describe(target / str(src).lstrip("/")) == seen


def test_prune_killed_after_every_write_leaves_a_whole_repository(tmp_path: Path) -> None:
    base, kept, src = build(tmp_path)
    counting = DyingStore(copy_of(base), after=10**9)
    repo = Repository.open(counting, "pw")
    full = repo.prune(PruneOptions(repack_threshold=0.1))
    assert full.packs_repacked and full.packs_deleted and full.index_blobs_written
    total = counting.writes
    assert total >= 8
    for after in range(total):
        survivor = copy_of(base)
        dying = DyingStore(survivor, after)
        repo = Repository.open(dying, "pw")
        repo.locker = Locker(dying, pid=NO_SUCH_PID)
        try:
            repo.prune(PruneOptions(repack_threshold=0.1))
        except Crash:
            pass
        else:
            raise AssertionError(f"prune did not die at write {after} of {total}")
        assert_whole(survivor, kept, src, tmp_path / f"after-{after}")
        again = Repository.open(survivor, "pw").prune(PruneOptions(repack_threshold=0.1))
        assert again.snapshots == len(kept)
        if after == total - 1:
            assert again.bytes_freed == 0, "everything was already done but the lock release"
        assert_whole(survivor, kept, src, tmp_path / f"again-{after}")


PRUNE = """
import sys, time
from haprotect.repo import Repository
from haprotect.repo.maintenance.prune import PruneOptions
from haprotect.storage.local import LocalStore
from haprotect.storage.wrappers import StoreWrapper

class Slow(StoreWrapper):
    def _run(self, op, key, call):
        time.sleep(0.01)
        return call()

repo = Repository.open(Slow(LocalStore(sys.argv[1])), "pw")
print("started", flush=True)
repo.prune(PruneOptions(repack_threshold=0.05))
print("done", flush=True)
"""


def run_prune(repo_dir: Path, kill_after: float | None) -> tuple[bool, float]:
    """Run a prune process, kill -9 it ``kill_after`` seconds in; (finished?, seconds)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", PRUNE, str(repo_dir)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    started = time.monotonic()
    if kill_after is None:
        assert proc.stdout.readline().strip() == "done"
        took = time.monotonic() - started
        assert proc.wait() == 0
        return True, took
    time.sleep(kill_after)
    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.stdout.read()
    proc.wait()
    return "done" in rest, kill_after


def test_prune_killed_at_random_moments(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    repo_dir, src = tmp_path / "repo", tmp_path / "src"
    src.mkdir()
    repo = Repository.init(
        LocalStore(repo_dir), "pw", kdf=KdfParams(n=1 << 10), pack_size=256 * 1024
    )
    kept: dict[str, dict[bytes, Seen]] = {}
    duration = 0.0
    interrupted = 0
    for round_ in range(5):
        for i in range(12):
            (src / f"r{round_}-{i}").write_bytes(rng.randbytes(rng.randint(1000, 80_000)))
        (src / f"big{round_}").write_bytes(rng.randbytes(MiB))
        old = sorted(src.iterdir())
        for path in old[: len(old) // 3]:
            path.unlink()
        first = repo.backup([src], tags=[f"round{round_}"])
        (src / f"late{round_}").write_bytes(rng.randbytes(30_000))
        second = repo.backup([src])
        kept[second.id] = describe(src)
        repo.forget(first.id)
        if round_ == 0:  # measure how long a prune takes here
            _, duration = run_prune(repo_dir, None)
        else:
            finished, _ = run_prune(repo_dir, rng.uniform(0.05, 0.95) * duration)
            interrupted += not finished
        repo = Repository.open(LocalStore(repo_dir), "pw")
        report = repo.check(read_data=True)
        assert report.ok, (seed, [f.message for f in report.errors])
        assert {s.id for s in repo.snapshots()} == set(kept), seed
        for snapshot_id, seen in kept.items():
            target = tmp_path / f"r{round_}-{snapshot_id[:8]}"
            repo.restore(snapshot_id, target)
            assert describe(target / str(src).lstrip("/")) == seen, seed
    assert interrupted >= 1, f"seed {seed}: no prune was killed before it finished"
    final = repo.backup([src])
    out = tmp_path / "final"
    repo.restore(final.id, out)
    assert describe(out / str(src).lstrip("/")) == describe(src)
    assert Repository.open(LocalStore(repo_dir), "pw").check().ok
