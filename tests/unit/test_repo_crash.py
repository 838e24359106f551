"""A backup killed at any moment leaves a consistent repository."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from haprotect.repo import KdfParams, Repository
from haprotect.storage.local import LocalStore
from haprotect.testing.repo import MiB, describe

BACKUP = """
import sys
from haprotect.repo import Repository
from haprotect.storage.local import LocalStore
repo = Repository.open(LocalStore(sys.argv[1]), "pw")
print("started", flush=True)
repo.backup([sys.argv[2]])
print("done", flush=True)
"""


def grow(src: Path, rng: random.Random, round_: int) -> None:
    part = src / f"round{round_}"
    part.mkdir()
    for i in range(30):
        (part / f"small{i}").write_bytes(rng.randbytes(rng.randint(0, 30_000)))
    (part / "big").write_bytes(rng.randbytes(6 * MiB + round_))


def start_backup(script: str, repo_dir: Path, src: Path) -> subprocess.Popen[str]:
    """A backup by ``script`` in a process of its own, once it has opened the repository."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(repo_dir), str(src)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    return proc


def run_and_kill(repo_dir: Path, src: Path, delay: float | None) -> bool:
    proc = start_backup(BACKUP, repo_dir, src)
    if delay is None:
        assert proc.wait(timeout=60) == 0
        return True
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return False
    return proc.returncode == 0


def test_backups_killed_at_random_moments_leave_a_usable_repository(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    repo_dir, src = tmp_path / "repo", tmp_path / "src"
    src.mkdir()
    Repository.init(LocalStore(repo_dir), "pw", kdf=KdfParams(n=1 << 10), pack_size=1 * MiB)
    completed = 0
    for round_ in range(6):
        grow(src, rng, round_)
        delay = None if round_ == 2 else rng.uniform(0.0, 0.4)
        completed += run_and_kill(repo_dir, src, delay)
    repo = Repository.open(LocalStore(repo_dir), "pw")
    snapshots = repo.snapshots()
    # a backup killed after writing its snapshot, before exiting, still counts
    assert 1 <= completed <= len(snapshots) <= 6, f"seed {seed}"
    for snapshot in snapshots:
        out = tmp_path / f"check-{snapshot.short_id}"
        assert repo.restore(snapshot.id, out).errors == (), f"seed {seed}"
    final = repo.backup([src])
    out = tmp_path / "final"
    repo.restore(final.id, out)
    assert describe(out / str(src).lstrip("/")) == describe(src)
    assert [s.id for s in Repository.open(LocalStore(repo_dir), "pw").snapshots()][-1] == final.id


BACKUP_WITH_READERS = """
import sys
from haprotect.repo import BackupOptions, Repository
from haprotect.repo.backup import dispatch
from haprotect.repo.process.forkpool import ForkPool
from haprotect.storage.local import LocalStore
dispatch.READERS_AFTER_BATCHES = 1
start = ForkPool.start
def started(self):
    start(self)
    print("readers", flush=True)
ForkPool.start = started
repo = Repository.open(LocalStore(sys.argv[1]), "pw")
print("started", flush=True)
repo.backup([sys.argv[2]], options=BackupOptions(readers=2))
print("done", flush=True)
"""


def processes_using(path: Path) -> list[int]:
    """Processes whose command line names ``path``: a backup and the readers it forked."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if os.fsencode(path) in f.read().split(b"\0"):
                    found.append(int(pid))
        except (OSError, ValueError):
            continue
    return found


def test_backups_with_readers_killed_at_random_moments_leave_no_process_behind(
    tmp_path: Path,
) -> None:
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    repo_dir, src = tmp_path / "repo", tmp_path / "src"
    src.mkdir()
    Repository.init(LocalStore(repo_dir), "pw", kdf=KdfParams(n=1 << 10), pack_size=1 * MiB)
    with_readers = 0
    for round_ in range(4):
        part = src / f"round{round_}"
        part.mkdir()
        for i in range(1500):
            (part / f"small{i}").write_bytes(rng.randbytes(rng.randint(0, 4_000)))
        proc = start_backup(BACKUP_WITH_READERS, repo_dir, src)
        assert proc.stdout is not None
        if round_ % 2:
            # every other round is killed while its readers work, however slow the host
            with_readers += "readers" in proc.stdout.readline().split()
        try:
            proc.wait(timeout=rng.uniform(0.05, 0.3))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        else:
            assert proc.returncode == 0, f"seed {seed}: a backup that was not killed failed"
        with_readers += "readers" in proc.stdout.read().split()
        deadline = time.monotonic() + 10
        while processes_using(repo_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_using(repo_dir) == [], f"seed {seed}: a reader outlived its backup"
    assert with_readers, f"seed {seed}: no backup got as far as forking its readers"
    repo = Repository.open(LocalStore(repo_dir), "pw")
    assert repo.check(read_data=True).ok, f"seed {seed}"
    final = repo.backup([src])
    out = tmp_path / "final"
    repo.restore(final.id, out)
    assert describe(out / str(src).lstrip("/")) == describe(src)
