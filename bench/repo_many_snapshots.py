"""A no-change backup with 1,000 snapshots in the repository against one with 1.

A backup's parent is the latest snapshot of its host and paths; finding it
must not cost a load of every snapshot (the target: with 1,000 snapshots, a
no-change backup within 1.2x of its time with one). Two repositories hold
the same small tree (``--files`` files of 4 KiB in directories of 100):
one backed up once, the other backed up once and then given ``--snapshots``
minus one more snapshot records of the same tree, written directly through
the repository's API (spread over the past year, one in four of other hosts,
as a long-lived repository holds), which is what 1,000 backups leave but
takes seconds. Then, through the installed console script as a user runs
it:

- the first ``haprotect repo backup`` of the large one, which summarises the
  snapshots written without summaries (what the first backup after an
  upgrade, or after the summaries were lost, pays), timed once;
- ``--repeat`` rounds of a no-change ``haprotect repo backup`` of each, in
  turns (one of each, then the next round, so a busy minute slows both),
  the median of each (wall and CPU seconds, peak RSS, from ``wait4``) and
  their ratios (CPU seconds are the steadier on a shared host);
- in this process, the library loading every snapshot (``Repository.snapshots()``:
  what each backup paid to find its parent before) and finding the parent
  (``Repository.parent_for``, through the summaries).

Prints the figures and writes them to bench/out/repo_many_snapshots.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
PASSPHRASE = "bench"
TARGET = 1.2


def make_tree(root: Path, files: int) -> None:
    for i in range(files):
        folder = root / f"d{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}").write_bytes(os.urandom(4096))


@dataclass(frozen=True)
class Run:
    """One command: wall seconds, CPU seconds (user and system) and peak RSS in MiB."""

    wall: float
    cpu: float
    rss_mib: float


def cli(*args: str) -> Run:
    """One ``haprotect`` command, run as a user runs it, measured by ``wait4``."""
    env = {**os.environ, "HAPROTECT_PASSWORD": PASSPHRASE}
    start = time.perf_counter()
    child = subprocess.Popen([HAPROTECT, *args], stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"haprotect {' '.join(args)} failed with exit {child.returncode}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def add_records(repo_dir: Path, count: int) -> float:
    """Write ``count`` snapshot records like the first one; return the seconds it takes
    this process to load every snapshot afterwards."""
    from haprotect.repo import open_repository
    from haprotect.repo.format.snapshots import write_snapshot
    from haprotect.storage import open_store

    repo = open_repository(open_store(str(repo_dir)), PASSPHRASE)
    (first,) = repo.snapshots()
    for i in range(count):
        record = replace(
            first,
            time=first.time - timedelta(minutes=(count - i) * 500),
            host=first.host if i % 4 else f"other-{i % 7}.{socket.gethostname()}",
        )
        write_snapshot(repo.store, repo.key, record)
    start = time.perf_counter()
    loaded = repo.snapshots()
    seconds = time.perf_counter() - start
    assert len(loaded) == count + 1
    return seconds


def parent_lookup(repo_dir: Path) -> float:
    """Seconds this process takes to find a backup's parent through the summaries."""
    from haprotect.repo import open_repository
    from haprotect.storage import open_store

    repo = open_repository(open_store(str(repo_dir)), PASSPHRASE)
    repo.key  # noqa: B018 (the key derived before the clock starts)
    latest = max(repo.snapshots(), key=lambda s: (s.time, s.id))
    start = time.perf_counter()
    found = repo.parent_for(latest.host, latest.paths)
    seconds = time.perf_counter() - start
    assert found == latest
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="haprotect-many-") as tmp:
        work = Path(tmp)
        tree = work / "tree"
        make_tree(tree, args.files)
        repos = {"1": work / "one", str(args.snapshots): work / "many"}
        for repo_dir in repos.values():
            cli("repo", "init", str(repo_dir))
            cli("repo", "backup", str(repo_dir), str(tree))
        many = repos[str(args.snapshots)]
        load_all = add_records(many, args.snapshots - 1)
        summarise = cli("repo", "backup", str(many), str(tree))
        runs: dict[str, list[Run]] = {name: [] for name in repos}
        for _ in range(args.repeat):
            for name, repo_dir in repos.items():
                runs[name].append(cli("repo", "backup", str(repo_dir), str(tree)))
        lookup = parent_lookup(many)
    medians = {
        name: {
            field: statistics.median(getattr(r, field) for r in done)
            for field in Run.__dataclass_fields__
        }
        for name, done in runs.items()
    }
    many_name = str(args.snapshots)
    ratio = {field: medians[many_name][field] / medians["1"][field] for field in ("wall", "cpu")}
    result = {
        "snapshots": args.snapshots,
        "files": args.files,
        "repeat": args.repeat,
        "medians": medians,
        "runs": {name: [asdict(r) for r in done] for name, done in runs.items()},
        "ratio_wall": ratio["wall"],
        "ratio_cpu": ratio["cpu"],
        "target": TARGET,
        "first_backup_summarising": asdict(summarise),
        "library_load_every_snapshot_seconds": load_all,
        "library_parent_lookup_seconds": lookup,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "repo_many_snapshots.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"no-change backup of {args.files} files, median of {args.repeat} runs each")
    print(f"{'snapshots':>9} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9}")
    for name, m in medians.items():
        print(f"{name:>9} {m['wall']:8.3f} {m['cpu']:8.3f} {m['rss_mib']:9.1f}")
    print(f"ratio {ratio['wall']:.2f} wall, {ratio['cpu']:.2f} CPU (target <= {TARGET})")
    print(
        f"first backup after {args.snapshots - 1} records without summaries: "
        f"{summarise.wall:.3f} s wall, {summarise.cpu:.3f} s CPU"
    )
    print(
        f"in the library: loading every snapshot {load_all:.3f} s, the parent lookup {lookup:.3f} s"
    )


if __name__ == "__main__":
    main()
