"""The idle service: ``haprotect serve`` with 10,000 jobs of which none is due, CPU per minute.

Generates the scheduling benchmark's policy (bench/gen_policy.py: 10,000
items over 1,000 applications), moves every schedule to a daily fire twelve
hours away, applies and approves it in a fresh catalog, and records one
completed run for each of its jobs, as a service that has run for a while
would have. Then it starts the installed ``haprotect serve`` on it, waits
for its API and its first tick (the start: the policy parsed, every job's
history read), and measures the CPU time (user + system, from /proc) the
process takes while idle for ``--seconds``. The target: under 1 % of a
core. Written as JSON to bench/out/service_idle.json for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml

from haprotect.catalog import Catalog
from haprotect.catalog.records import RunStatus, Trigger
from haprotect.policy.io import dump_policy
from haprotect.ports import free_ports
from haprotect.service.jobs import build_jobs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_policy import generate

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
HAPROTECT = str(Path(sys.executable).with_name("haprotect"))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="haprotect-idle-"))
    now = datetime.now(UTC)
    fire = now + timedelta(hours=12)
    daily = f"{fire.minute} {fire.hour} * * *"
    policy = generate(args.applications, 14)
    policy = replace(policy, items=tuple(replace(i, schedule=daily) for i in policy.items))
    catalog_url = f"sqlite:///{root / 'catalog.db'}"
    setup = time.perf_counter()
    with Catalog.open(catalog_url) as catalog:
        catalog.apply_policy(
            policy.metadata.name, dump_policy(policy), by="bench", auto_approve=True
        )
        jobs = build_jobs(policy)
        for job in jobs:
            run = catalog.start_run(job.key, repository=job.repository, trigger=Trigger.SCHEDULED)
            catalog.finish_run(run.id, RunStatus.COMPLETED)
    setup = time.perf_counter() - setup
    (port,) = free_ports(1)
    config = root / "service.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(root / "state"),
                "catalog": catalog_url,
                "listen": f"127.0.0.1:{port}",
                "log_level": "warning",
                "maintenance": {"prune": daily, "verify": daily},
                "drift": {"schedule": daily},
            }
        )
    )
    started = time.perf_counter()
    server = subprocess.Popen(
        [HAPROTECT, "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=(root / "serve.log").open("wb"),
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise SystemExit((root / "serve.log").read_text()[-2000:])
            time.sleep(0.2)
        # The first tick reads every job's history; wait until the process is quiet.
        previous = cpu_seconds(server.pid)
        while True:
            time.sleep(5)
            current = cpu_seconds(server.pid)
            if current - previous < 0.25:
                break
            previous = current
        start_seconds = time.perf_counter() - started
        start_cpu = cpu_seconds(server.pid)
        begin_cpu, begin = cpu_seconds(server.pid), time.perf_counter()
        time.sleep(args.seconds)
        idle_cpu = cpu_seconds(server.pid) - begin_cpu
        elapsed = time.perf_counter() - begin
    finally:
        server.terminate()
        server.wait(60)
    result = {
        "jobs": len(jobs),
        "items": len(policy.items),
        "catalog_setup_seconds": round(setup, 1),
        "start_seconds": round(start_seconds, 1),
        "start_cpu_seconds": round(start_cpu, 1),
        "idle_seconds": round(elapsed, 1),
        "idle_cpu_seconds": round(idle_cpu, 2),
        "idle_core_percent": round(100 * idle_cpu / elapsed, 2),
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "service_idle.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
