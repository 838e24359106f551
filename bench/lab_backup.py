"""Backup from the standby on the lab: throughput, and what the primary felt.

Starts the lab in bench/out/lab, grows its database (a table of ~1 KiB rows)
and its shared uploads directory to the sizes asked for, then:

1. for a baseline window, commits small transactions on the primary and
   records their latency and the CPU time of the primary's PostgreSQL
   processes;
2. runs ``haprotect backup`` (from the standby) while the same writer runs,
   recording the same figures, and whether any backup session ever showed
   up on the primary;
3. restores the snapshot set into a scratch directory (``--to``).

It prints the throughput of backup and restore, and the primary's extra CPU
seconds and commit latency during the backup next to the baseline, and
writes bench/out/lab_backup.json for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from haprotect.lab import Lab

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
PASSWORD = "bench-lab"


def primary_cpu_seconds(lab: Lab) -> float:
    """utime+stime of the primary's postmaster and all its children."""
    postmaster = int((lab.data_dirs[lab.primary] / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if postmaster in (pid, ppid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Writer(threading.Thread):
    """Commits one small insert after another on the primary, timing each commit."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_ticks (t timestamptz default now())")
            while not self.stop.is_set():
                start = time.perf_counter()
                conn.execute("INSERT INTO bench_ticks DEFAULT VALUES")
                self.latencies.append(time.perf_counter() - start)
                time.sleep(0.01)


def backup_sessions_on_primary(dsn: str, seen: list[str], stop: threading.Event) -> None:
    query = (
        "SELECT coalesce(application_name, '') || '/' || backend_type FROM pg_stat_activity "
        "WHERE application_name ILIKE '%basebackup%' OR backend_type = 'walsender'"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            seen.extend(row[0] for row in conn.execute(query).fetchall())
            time.sleep(0.1)


def measure(lab: Lab, action: list[str] | None, seconds: float) -> dict[str, object]:
    writer = Writer(lab.primary_dsn)
    cpu_before = primary_cpu_seconds(lab)
    writer.start()
    start = time.perf_counter()
    if action is None:
        time.sleep(seconds)
    else:
        subprocess.run(action, check=True, env={**os.environ, "HAPROTECT_PASSWORD": PASSWORD})
    elapsed = time.perf_counter() - start
    writer.stop.set()
    writer.join()
    cpu = primary_cpu_seconds(lab) - cpu_before
    lat = sorted(writer.latencies)
    return {
        "seconds": elapsed,
        "primary_cpu_seconds": cpu,
        "commits": len(lat),
        "commit_ms_p50": 1000 * statistics.median(lat),
        "commit_ms_p99": 1000 * lat[int(len(lat) * 0.99) - 1] if len(lat) > 1 else 0.0,
    }


def grow(lab: Lab, db_mib: int, files_mib: int) -> None:
    rows = db_mib * 1024
    with psycopg.connect(lab.primary_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_rows")
        conn.execute(
            "CREATE TABLE bench_rows AS SELECT g AS id, md5(g::text) || repeat(md5(g::text), 30)"
            f" AS body FROM generate_series(1, {rows}) g"
        )
        conn.execute("CHECKPOINT")
    uploads = lab.uploads_dir / "bench"
    uploads.mkdir(parents=True, exist_ok=True)
    for i in range(files_mib):
        (uploads / f"file-{i:05d}.bin").write_bytes(os.urandom(1 << 20))


def stop_restored_server(restored: Path) -> None:
    """The restore leaves the checked server running; stop it (fast shutdown)."""
    for pid_file in restored.rglob("postmaster.pid"):
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        for _ in range(100):
            if not pid_file.exists():
                break
            time.sleep(0.1)


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-mib", type=int, default=256)
    parser.add_argument("--files-mib", type=int, default=128)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    root, repo, restored = OUT / "lab", OUT / "lab-repo", OUT / "lab-restored"
    lab = Lab(root)
    if lab.exists:
        lab.down(purge=True)
    for path in (repo, restored):
        shutil.rmtree(path, ignore_errors=True)
    lab.up()
    try:
        grow(lab, args.db_mib, args.files_mib)
        data_bytes = tree_bytes(lab.data_dirs[lab.standby]) + tree_bytes(lab.shared_dir)
        rules, policy = OUT / "lab-rules.yaml", OUT / "lab-policy.yaml"
        rules.write_text(f"where: file://{repo}\n")
        subprocess.run(
            [
                HAPROTECT,
                "plan",
                f"pacemaker+file://{lab.cib_path}",
                "--rules",
                str(rules),
                "-o",
                str(policy),
            ],
            check=True,
        )
        baseline = measure(lab, None, args.baseline_seconds)
        seen: list[str] = []
        stop = threading.Event()
        watcher = threading.Thread(
            target=backup_sessions_on_primary, args=(lab.primary_dsn, seen, stop), daemon=True
        )
        watcher.start()
        backup = measure(
            lab,
            [HAPROTECT, "backup", str(policy), "--inventory", str(lab.inventory_path), "--init"],
            0,
        )
        stop.set()
        watcher.join()
        start = time.perf_counter()
        subprocess.run(
            [
                HAPROTECT,
                "restore",
                "latest",
                "--repo",
                f"file://{repo}",
                "--to",
                str(restored),
                "--yes",
                "--inventory",
                str(lab.inventory_path),
            ],
            check=True,
            env={**os.environ, "HAPROTECT_PASSWORD": PASSWORD},
        )
        restore_seconds = time.perf_counter() - start
        stop_restored_server(restored)
        restored_bytes = tree_bytes(restored)
    finally:
        lab.down()
    foreign = sorted({s for s in seen if "walsender" not in s or "basebackup" in s.lower()})
    standby_senders = sorted(set(seen) - set(foreign))
    result = {
        "data_bytes": data_bytes,
        "baseline": baseline,
        "backup": backup,
        "backup_mb_per_s": data_bytes / 1e6 / float(backup["seconds"]),  # type: ignore[arg-type]
        "restore_seconds": restore_seconds,
        "restored_bytes": restored_bytes,
        "restore_mb_per_s": restored_bytes / 1e6 / restore_seconds,
        "backup_sessions_seen_on_primary": foreign,
        "walsenders_seen_on_primary": standby_senders,
    }
    (OUT / "lab_backup.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"data: {data_bytes / 2**20:.0f} MiB (database on the standby + shared files)")
    print(
        f"backup from the standby: {backup['seconds']:.1f} s, {result['backup_mb_per_s']:.0f} MB/s"
    )
    print(f"restore (--to): {restore_seconds:.1f} s, {result['restore_mb_per_s']:.0f} MB/s")
    print(f"{'primary':28} {'baseline':>10} {'during backup':>14}")
    for key in ("seconds", "primary_cpu_seconds", "commits", "commit_ms_p50", "commit_ms_p99"):
        print(f"{key:28} {float(baseline[key]):10.2f} {float(backup[key]):14.2f}")  # type: ignore[arg-type]
    print(f"backup sessions seen on the primary: {foreign or 'none'}")


if __name__ == "__main__":
    main()
