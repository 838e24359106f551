"""Several writers at once: shared locks let concurrent backups both land."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from haprotect.repo import KdfParams, Repository
from haprotect.repo.lockfile import LOCKS_PREFIX
from haprotect.storage.local import LocalStore
from haprotect.testing.repo import MiB, describe

BACKUP = """
import sys, time
from pathlib import Path
from haprotect.repo import Repository
from haprotect.storage.local import LocalStore
repo = Repository.open(LocalStore(sys.argv[1]), "pw")
go = Path(sys.argv[3])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
started = time.monotonic()
snapshot = repo.backup([sys.argv[2]], host=sys.argv[4])
print(snapshot.id, started, time.monotonic(), flush=True)
"""


def make_tree(root: Path, seed: int) -> None:
    rng = random.Random(seed)
    root.mkdir()
    for i in range(60):
        (root / f"small{i}").write_bytes(rng.randbytes(rng.randint(0, 40_000)))
    for i in range(3):
        (root / f"big{i}").write_bytes(rng.randbytes(4 * MiB))
    (root / "shared").write_bytes(random.Random(0).randbytes(2 * MiB))  # in both trees


def test_two_processes_back_up_at_once_and_both_snapshots_land(tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    Repository.init(LocalStore(repo_dir), "pw", kdf=KdfParams(n=1 << 10), pack_size=2 * MiB)
    trees = [tmp_path / "one", tmp_path / "two"]
    for seed, tree in enumerate(trees, 1):
        make_tree(tree, seed)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BACKUP, str(repo_dir), str(tree), str(go), f"host{n}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n, tree in enumerate(trees)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()
    spans = []
    ids = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        snapshot_id, start, end = out.split()
        ids.append(snapshot_id)
        spans.append((float(start), float(end)))
    (a_start, a_end), (b_start, b_end) = spans
    assert a_start < b_end and b_start < a_end, "the two backups overlapped in time"
    repo = Repository.open(LocalStore(repo_dir), "pw")
    assert sorted(s.id for s in repo.snapshots()) == sorted(ids)
    for snapshot_id, tree in zip(ids, trees, strict=True):
        out_dir = tmp_path / f"out-{snapshot_id[:8]}"
        assert repo.restore(snapshot_id, out_dir).errors == ()
        assert describe(out_dir / str(tree).lstrip("/")) == describe(tree)
    report = repo.check(read_data=True)
    assert report.ok and report.findings == ()
    assert list(LocalStore(repo_dir).list(LOCKS_PREFIX)) == [], "both released their locks"
    started = time.monotonic()
    repo.prune()
    assert time.monotonic() - started < 60
    assert repo.check(read_data=True).ok
