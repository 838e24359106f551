"""Run every benchmark in bench/ (``make bench``); each prints its own table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "cli_startup.py",
    "cib_scale.py",
    "repo_vs_peers.py",
    "repo_many_snapshots.py",
    "lab_backup.py",
    "quiesce_window.py",
    "service_planning.py",
]


def main() -> None:
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, str(HERE / name), *sys.argv[1:]], check=True)


if __name__ == "__main__":
    main()
