"""Many small files: haprotect against restic on a tree of a million files of 1-16 KiB.

    .venv/bin/python bench/repo_many_files.py [--files 1000000] [--rounds 1]

The tree (kept in bench/out/many-files-N and reused) holds ``--files``
files of 1 to 16 KiB of seeded random bytes, a thousand to a directory, the
shape where backup tools spend their time in metadata rather than data.
Each round, in turns (the order rotates), each tool through its command line
as a user runs it, into a new local repository: an initial backup, then a
backup with nothing changed. Wall seconds, CPU seconds and peak RSS of each
(``os.wait4``); before each timed step the tree's metadata and data are read
once and everything synced. Targets: initial and no-change backups <= 0.5x
restic's time, peak RSS <= restic's. Writes bench/out/repo_many_files.json
and bench/out/repo_many_files.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from repo_vs_peers import OUT, PASSWORD, Run, measure, read_all

HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
TOOLS = ("haprotect", "restic")
PER_DIRECTORY = 1000
SEED = 20261207
# (metric, limit of haprotect ÷ restic)
TARGETS = {"initial_s": 0.5, "unchanged_s": 0.5, "initial_rss_mib": 1.0, "unchanged_rss_mib": 1.0}


def make_tree(files: int) -> Path:
    """The tree of ``files`` files, generated once (seeded: the same bytes every time)."""
    root = OUT / f"many-files-{files}"
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    print(f"generating {files} files in {root}", flush=True)
    rng = random.Random(SEED)
    for index in range(files):
        directory = root / f"d{index // PER_DIRECTORY:04d}"
        if index % PER_DIRECTORY == 0:
            directory.mkdir(parents=True)
        (directory / f"f{index % PER_DIRECTORY:04d}").write_bytes(
            rng.randbytes(rng.randint(1024, 16384))
        )
    (root / ".complete").touch()
    return root


def commands(tool: str, repo: Path) -> dict[str, list[str]]:
    if tool == "haprotect":
        return {
            "init": [HAPROTECT, "repo", "init", str(repo)],
            "backup": [HAPROTECT, "repo", "backup", str(repo)],
        }
    return {
        "init": ["restic", "-r", str(repo), "init", "--repository-version", "2"],
        "backup": ["restic", "-r", str(repo), "backup", "--quiet", "--host", "bench"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    args, _ = parser.parse_known_args()
    if shutil.which("restic") is None:
        raise SystemExit("restic is not installed: run scripts/bootstrap --bench as root")
    OUT.mkdir(exist_ok=True)
    tree = make_tree(args.files)
    work = OUT / "many-files-work"
    env = {
        **os.environ,
        "HAPROTECT_PASSWORD": PASSWORD,
        "RESTIC_PASSWORD": PASSWORD,
        "RESTIC_CACHE_DIR": str(work / "restic-cache"),
    }
    runs: dict[str, dict[str, list[Run]]] = {t: {"initial": [], "unchanged": []} for t in TOOLS}
    for round_ in range(args.rounds):
        order = TOOLS[round_ % 2 :] + TOOLS[: round_ % 2]
        print(f"round {round_ + 1}/{args.rounds}: {' '.join(order)}", flush=True)
        for tool in order:
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            lines = commands(tool, work / f"repo-{tool}")
            measure(lines["init"], env)
            for step in ("initial", "unchanged"):
                read_all(tree)
                os.sync()
                run = measure([*lines["backup"], str(tree)], env)
                runs[tool][step].append(run)
                print(
                    f"  {tool:10s} {step:10s} {run.seconds:8.2f} s  cpu {run.cpu:7.1f} s"
                    f"  rss {run.rss_mib:6.0f} MiB",
                    flush=True,
                )
    shutil.rmtree(work, ignore_errors=True)
    table: dict[str, dict[str, float]] = {}
    for tool in TOOLS:
        table[tool] = {}
        for step in ("initial", "unchanged"):
            table[tool][f"{step}_s"] = statistics.median(r.seconds for r in runs[tool][step])
            table[tool][f"{step}_cpu_s"] = statistics.median(r.cpu for r in runs[tool][step])
            table[tool][f"{step}_rss_mib"] = max(r.rss_mib for r in runs[tool][step])
    ratios = {key: table["haprotect"][key] / table["restic"][key] for key in table["haprotect"]}
    labels = {
        "initial_s": "initial backup, s",
        "initial_cpu_s": "initial backup, CPU s",
        "initial_rss_mib": "initial backup, peak RSS MiB",
        "unchanged_s": "no-change backup, s",
        "unchanged_cpu_s": "no-change backup, CPU s",
        "unchanged_rss_mib": "no-change backup, peak RSS MiB",
    }
    lines = [
        f"| {args.files:,} files of 1-16 KiB | haprotect | restic | haprotect ÷ restic | target |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, label in labels.items():
        target = f"<= {TARGETS[key]:g}" if key in TARGETS else ""
        lines.append(
            f"| {label} | {table['haprotect'][key]:.1f} | {table['restic'][key]:.1f} "
            f"| {ratios[key]:.2f} | {target} |"
        )
    rendered = "\n".join(lines)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": args.files,
        "rounds": args.rounds,
        "table": table,
        "ratios": ratios,
        "targets_met": {key: ratios[key] <= limit for key, limit in TARGETS.items()},
    }
    (OUT / "repo_many_files.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "repo_many_files.md").write_text(rendered + "\n")
    print(f"\n{rendered}")


if __name__ == "__main__":
    main()
