"""How long a request waits at the gate during a consistent backup of the lab.

Starts a lab in a temporary directory, fills its shared uploads directory and
its database to ``--mib`` MiB each (default 10; run it again with 100 for
ten times the data), then, while a client sends orders through the gate one
after another, backs the ``shop`` application up two ways:

- **cut**: as ``haprotect backup`` does: hold the tiers top-down, take the
  cut (a copy of the files, the primary's WAL position), resume, then copy;
- **naive**: hold every tier until the copy into the repository is done.

For each it reports the longest time one order took (its wait at the gate
plus its normal service time), the client's baseline before the backups, and
how long the gate was held. ``--volume xfs`` (root) puts the lab's shared
directory on a loop-mounted XFS volume with reflinks, so the cut shares
blocks instead of copying them. Writes
bench/out/quiesce_window-<mib>[-<volume>].json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

from haprotect.engine import ListReporter, run_backup
from haprotect.engine.backup import RunOptions
from haprotect.engine.planning import plan_backup
from haprotect.engine.quiescing import quiesce_specs
from haprotect.lab import Lab
from haprotect.model.plan import Plan
from haprotect.model.result import Status
from haprotect.plan import load_inventory
from haprotect.policy import default_rules, generate
from haprotect.quiesce import held
from haprotect.repo import KdfParams, Repository
from haprotect.sources import DiscoverOptions, discover
from haprotect.storage import open_store

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


class Prober(threading.Thread):
    """Orders through the gate, one after another; the latency of each."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.failures = 0

    def run(self) -> None:
        with httpx.Client(trust_env=False, timeout=120) as client:
            while not self.stop.is_set():
                order = {"id": uuid.uuid4().hex, "item": "tea", "quantity": 1}
                started = time.monotonic()
                try:
                    ok = client.post(f"{self.url}/api/orders", json=order).is_success
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.latencies.append(time.monotonic() - started)
                else:
                    self.failures += 1
                time.sleep(0.005)


def fill(lab: Lab, mib: int) -> None:
    uploads = Path(lab.uploads_dir)
    uploads.mkdir(parents=True, exist_ok=True)
    for i in range(mib):
        (uploads / f"bench-{i:05d}.bin").write_bytes(os.urandom(1 << 20))
    with psycopg.connect(lab.primary_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_fill (id bigint, pad text)")
        # ~1 KiB of incompressible-ish text per row
        conn.execute(
            "INSERT INTO bench_fill SELECT g, repeat(md5(g::text || random()::text), 32) "
            "FROM generate_series(1, %s) g",
            (mib * 1024,),
        )
        # Steady state: the server checkpoints on its own (checkpoint_timeout); without
        # this, the hold's CHECKPOINT would write the whole fill, once.
        conn.execute("CHECKPOINT")
    os.sync()


def plan_of(lab: Lab) -> Plan:
    source = f"pacemaker+file://{lab.cib_path}"
    topology = discover(source, DiscoverOptions(use_cli=False))
    policy = generate(topology, default_rules(), source=source, now=datetime.now(UTC))
    plan = plan_backup(policy, load_inventory(lab.inventory_path), use_cli=False)
    return replace(plan, sets=tuple(s for s in plan.sets if s.application))


def measure(lab: Lab, repo: Repository, root: Path, mode: str) -> dict[str, object]:
    plan = plan_of(lab)
    prober = Prober(lab.web_url)
    prober.start()
    time.sleep(1.0)
    before = len(prober.latencies)
    started = time.monotonic()
    options = RunOptions(staging=root / "staging")
    if mode == "cut":
        result = run_backup(plan, repo, ListReporter(), options)
        held_seconds = None
    else:
        specs = [s for pset in plan.sets for s in quiesce_specs(plan, pset)]
        bare = replace(
            plan,
            sets=tuple(
                replace(s, tiers=tuple(replace(t, quiesce=()) for t in s.tiers)) for s in plan.sets
            ),
        )
        with held(specs) as holding:
            result = run_backup(bare, repo, ListReporter(), options)
        held_seconds = max((w.seconds or 0.0) for w in holding.windows)
    seconds = time.monotonic() - started
    time.sleep(1.0)
    prober.stop.set()
    prober.join()
    during = prober.latencies[before:]
    windows: dict[str, float] = {}
    if held_seconds is None:
        windows = _windows(repo)
        held_seconds = max(windows.values(), default=0.0)
    return {
        "mode": mode,
        "status": result.status.value,
        "backup_seconds": round(seconds, 3),
        "gate_held_seconds": round(held_seconds, 3),
        "longest_request_seconds": round(max(during), 3) if during else None,
        "requests": len(during),
        "failures": prober.failures,
        "ok": result.status is Status.COMPLETED,
        "held_seconds_by_tier": windows,
    }


def _windows(repo: Repository) -> dict[str, float]:
    """How long each tier was held, from the latest snapshot's metadata."""
    latest = max(repo.snapshots(), key=lambda s: s.time)
    block = latest.metadata.get("set")
    if not isinstance(block, dict) or not isinstance(block.get("quiesce"), dict):
        return {}
    return {
        f"{w['tier']} ({w['kind']})": float(w["held_seconds"] or 0.0)
        for w in block["quiesce"]["windows"]
    }


def baseline(lab: Lab) -> float:
    prober = Prober(lab.web_url)
    prober.start()
    time.sleep(3.0)
    prober.stop.set()
    prober.join()
    return round(max(prober.latencies), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=10, help="MiB of files and of table data")
    parser.add_argument("--volume", choices=["xfs"], help="the lab's shared volume (needs root)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hp-qwin-"))
    root.chmod(0o755)
    lab = Lab(root / "lab", volume=args.volume)
    try:
        lab.up()
        fill(lab, args.mib)
        results: dict[str, object] = {
            "mib": args.mib,
            "volume": args.volume or "none (the lab directory's filesystem)",
            "baseline_longest_request_seconds": baseline(lab),
        }
        runs = []
        for mode in ("cut", "naive"):  # each into a new repository: every byte is copied
            store = open_store(f"file://{root}/repo-{mode}")
            repo = Repository.init(store, "pw", kdf=KdfParams(n=1 << 10))
            runs.append(measure(lab, repo, root, mode))
        results["runs"] = runs
    finally:
        lab.down(purge=True)
        shutil.rmtree(root, ignore_errors=True)
    OUT.mkdir(exist_ok=True)
    name = f"quiesce_window-{args.mib}" + (f"-{args.volume}" if args.volume else "")
    (OUT / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
