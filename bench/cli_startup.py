"""CLI startup: ``haprotect --help`` and a group's help against ``restic version``, in one run.

Times, each the median of ``--repeat`` runs taken in turns (one of each
command, then the next round, so a busy minute slows them alike), the
installed console scripts as a user starts them:

- ``restic version`` (the peer: a Go binary; left out, and said so, when
  restic is not installed: ``scripts/bootstrap --bench`` installs it),
- ``haprotect --help`` (the verbs' index, no verb loaded),
  ``haprotect repo --help`` (one verb's help: its module and its commands'
  load, as before a repository command runs) and
  ``haprotect repo backup --help``,
- and, as floors, this interpreter doing nothing (``python -c pass``),
  importing typer, the command-line framework (``python -c 'import typer'``),
  and the help of a typer application of one command with one option
  (``minimal typer --help``): what any typer CLI with rich help pays.

Prints a table of seconds and ratios to restic (else to the bare
interpreter), also written as JSON to bench/out/cli_startup.json for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
PEER = "restic version"
FLOOR = "python -c pass"
MINIMAL_APP = """
import typer
app = typer.Typer(add_completion=False)
@app.command()
def run(count: int = 1) -> None:
    "Do nothing."
app()
"""


def seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    commands = {
        "haprotect --help": [HAPROTECT, "--help"],
        "haprotect repo --help": [HAPROTECT, "repo", "--help"],
        "haprotect repo backup --help": [HAPROTECT, "repo", "backup", "--help"],
        FLOOR: [sys.executable, "-c", "pass"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "minimal typer --help": [sys.executable, "-c", MINIMAL_APP, "--help"],
    }
    restic = shutil.which("restic")
    if restic is None:
        print("restic is not installed (scripts/bootstrap --bench installs it): timing haprotect")
    else:
        commands = {PEER: [restic, "version"], **commands}
    for argv in commands.values():
        seconds(argv)  # warm the page cache and the bytecode cache
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, argv in commands.items():
            times[name].append(seconds(argv))
    medians = {name: statistics.median(runs) for name, runs in times.items()}
    base_name = PEER if PEER in medians else FLOOR
    base = medians[base_name]
    OUT.mkdir(exist_ok=True)
    result = {
        "repeat": args.repeat,
        "restic": restic is not None,
        "median_seconds": medians,
        "range_seconds": {name: [min(runs), max(runs)] for name, runs in times.items()},
        f"ratio_to_{base_name.split()[0]}": {name: s / base for name, s in medians.items()},
    }
    (OUT / "cli_startup.json").write_text(json.dumps(result, indent=2) + "\n")
    label = f"x {base_name.split()[0]}"
    print(f"median of {args.repeat} runs each")
    print(f"{'command':32} {'seconds':>8} {label:>10}")
    for name, value in medians.items():
        print(f"{name:32} {value:8.3f} {value / base:10.2f}")


if __name__ == "__main__":
    main()
