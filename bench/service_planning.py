"""Planning a day of runs: ``haprotect schedule`` on a policy of 10,000 items, in one run.

Generates a policy of 10,000 items over 1,000 applications
(bench/gen_policy.py), then times, each the best of ``--repeat`` runs:

- the installed ``haprotect schedule POLICY --hours 24`` end to end, as text
  and as ``--json`` (output to /dev/null),
- ``haprotect validate POLICY``: the policy's loading alone, through the CLI,
- and, inside one interpreter, the parts: loading the policy, building the
  jobs, planning the day (the target: under a second).

Each figure is given as wall time and as CPU time (user + system of the
process), since the reference machine is shared and wall time follows its
load. Prints a table, also written as JSON to bench/out/service_planning.json
for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
START = "2026-12-08T00:00Z"

PARTS = """
import json, sys, time
from datetime import datetime, timedelta
from pathlib import Path
from haprotect.policy.io import load_policy
from haprotect.service.jobs import build_jobs
from haprotect.service.planning import plan_window

def timed(step):
    wall, cpu = time.perf_counter(), time.process_time()
    value = step()
    return value, (time.perf_counter() - wall, time.process_time() - cpu)

policy, load = timed(lambda: load_policy(Path(sys.argv[1])))
jobs, build = timed(lambda: build_jobs(policy))
start = datetime.fromisoformat(sys.argv[2])
runs, plan = timed(lambda: plan_window(jobs, start, start + timedelta(hours=24)))
print(json.dumps({
    "items": len(policy.items), "jobs": len(jobs), "runs": len(runs),
    "load policy": load, "build jobs": build, "plan 24 h": plan,
}))
"""


def run(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run of ``argv``."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def best_of(argv: list[str], repeat: int) -> tuple[float, float]:
    runs = [run(argv) for _ in range(repeat)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def parts(policy: Path, repeat: int) -> tuple[dict[str, int], dict[str, tuple[float, float]]]:
    """The counts, and the best wall and CPU seconds of each step inside one interpreter."""
    counts: dict[str, int] = {}
    steps: dict[str, tuple[float, float]] = {}
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", PARTS, str(policy), START],
            check=True,
            capture_output=True,
            text=True,
        )
        found = json.loads(done.stdout)
        counts = {name: found.pop(name) for name in ("items", "jobs", "runs")}
        for name, (wall, cpu) in found.items():
            old_wall, old_cpu = steps.get(name, (float("inf"), float("inf")))
            steps[name] = (min(old_wall, wall), min(old_cpu, cpu))
    return counts, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    policy = OUT / "service_planning.policy.yaml"
    subprocess.run(
        [
            sys.executable,
            str(HERE / "gen_policy.py"),
            str(policy),
            "--applications",
            str(args.applications),
        ],
        check=True,
    )
    schedule = [HAPROTECT, "schedule", str(policy), "--from", START, "--hours", "24"]
    commands = {
        "haprotect schedule --hours 24": best_of(schedule, args.repeat),
        "haprotect schedule --hours 24 --json": best_of([*schedule, "--json"], args.repeat),
        "haprotect validate": best_of([HAPROTECT, "validate", str(policy)], args.repeat),
    }
    counts, steps = parts(policy, args.repeat)
    result = {
        "policy_bytes": policy.stat().st_size,
        **counts,
        "commands": commands,
        "in_process": steps,
        "load_average": os.getloadavg(),
    }
    (OUT / "service_planning.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"policy: {counts['items']} items, {counts['jobs']} jobs, {counts['runs']} runs in 24 h, "
        f"{result['policy_bytes']:,} bytes"
    )
    print(f"{'step':40} {'wall s':>8} {'CPU s':>8}")
    for name, (wall, cpu) in commands.items():
        print(f"{name:40} {wall:8.2f} {cpu:8.2f}")
    for name, (wall, cpu) in steps.items():
        print(f"{'  in process: ' + name:40} {wall:8.2f} {cpu:8.2f}")


if __name__ == "__main__":
    main()
