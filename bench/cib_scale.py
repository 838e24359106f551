"""Discovery at scale: haprotect against crm_mon on one large CIB, in one run.

Generates a CIB of 10,000 primitives in 1,000 groups (bench/gen_cib.py),
then times, each the best of ``--repeat`` runs of the real commands:

- ``crm_mon --one-shot --inactive --output-as=xml`` with CIB_file (the peer),
- ``haprotect discover --json`` through crm_mon (the default path),
- ``haprotect discover --json --no-cli`` (the pure-Python status reading),
- ``haprotect plan --no-cli`` (discover and generate the policy).

and prints a table of seconds and ratios to crm_mon, also written as JSON to
bench/out/cib_scale.json for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
HAPROTECT = str(Path(sys.executable).with_name("haprotect"))


def best_of(argv: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--per-group", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("crm_mon") is None:
        sys.exit("crm_mon is not installed: run scripts/bootstrap as root")
    OUT.mkdir(exist_ok=True)
    cib = OUT / "cib_scale.xml"
    subprocess.run(
        [
            sys.executable,
            str(HERE / "gen_cib.py"),
            str(cib),
            "--groups",
            str(args.groups),
            "--per-group",
            str(args.per_group),
        ],
        check=True,
    )
    primitives = cib.read_bytes().count(b"<primitive ")
    url = f"pacemaker+file://{cib}"
    env = {**os.environ, "CIB_file": str(cib)}
    runs = {
        "crm_mon --output-as=xml": best_of(
            ["crm_mon", "--one-shot", "--inactive", "--output-as=xml"], args.repeat, env
        ),
        "haprotect discover --json": best_of([HAPROTECT, "discover", url, "--json"], args.repeat),
        "haprotect discover --json --no-cli": best_of(
            [HAPROTECT, "discover", url, "--json", "--no-cli"], args.repeat
        ),
        "haprotect plan --no-cli": best_of(
            [HAPROTECT, "plan", url, "--no-cli", "-o", str(OUT / "cib_scale.policy.yaml")],
            args.repeat,
        ),
    }
    base = runs["crm_mon --output-as=xml"]
    result = {
        "primitives": primitives,
        "groups": args.groups,
        "cib_bytes": cib.stat().st_size,
        "seconds": runs,
        "ratio_to_crm_mon": {name: seconds / base for name, seconds in runs.items()},
    }
    (OUT / "cib_scale.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"CIB: {primitives} primitives in {args.groups} groups, {result['cib_bytes']:,} bytes")
    print(f"{'command':40} {'seconds':>8} {'x crm_mon':>10}")
    for name, seconds in runs.items():
        print(f"{name:40} {seconds:8.2f} {seconds / base:10.2f}")


if __name__ == "__main__":
    main()
