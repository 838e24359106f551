"""Run every benchmark in bench/ (``make bench``); each prints its own table.

``--skip-scale`` leaves out the runs at scale (a million files), which take
the longest; any other argument is passed to every benchmark.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "cli_startup.py",
    "cib_scale.py",
    "repo_vs_peers.py",
    "repo_s3.py",
    "repo_many_snapshots.py",
    "lab_backup.py",
    "quiesce_window.py",
    "service_planning.py",
]
AT_SCALE = ["repo_many_files.py"]


def main() -> None:
    args = sys.argv[1:]
    benchmarks = BENCHMARKS + ([] if "--skip-scale" in args else AT_SCALE)
    passed = [arg for arg in args if arg != "--skip-scale"]
    for name in benchmarks:
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, str(HERE / name), *passed], check=True)


if __name__ == "__main__":
    main()
