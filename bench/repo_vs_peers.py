"""Repository: haprotect against restic and borg on one generated tree, in one run.

    .venv/bin/python bench/repo_vs_peers.py [--rounds 3] [--size-gib 2.0] [--tools ...]

The tree is made by the shared dataset tool (``../shared/bench/gen_dataset.py``
relative to the repository, or ``$HAPROTECT_BENCH_DATASET_TOOL``): a seeded
mix of logs, random binaries, page-structured database files and many small
files, kept in bench/out/dataset and reused. Each round copies it to
bench/out/work/src and, for each tool in turn (haprotect through its Python
API in a child process, ``restic`` and ``borg`` as commands), measures

1. the initial backup into a new local repository: wall seconds, MB/s, CPU
   seconds (user + system) and peak RSS of the child, from ``os.wait4``;
2. a backup with nothing changed;
3. after the dataset tool's ``mutate`` step (run once, so every tool sees
   the same change), a backup: time and the bytes it added to the repository;
4. the repository's size;
5. a full restore of the latest snapshot, from a repository dropped from
   the page cache first (every tool reads its packs from disk): MB/s when
   the tool exits, and when what it wrote is on disk (a ``sync`` after it:
   a tool that leaves gigabytes to the page cache has not finished
   writing them); then, outside the timing, every restored file is compared
   byte for byte with the source.

Before each timed command the whole tree is read once (the page cache cannot
be dropped here, so every tool starts with it warm) and everything is
synced, so that no tool's step writes out what an earlier step left behind. Every tool gets the same
settings where they have one: zstd level 3 for borg, restic's default (auto,
zstd) in a version 2 repository, haprotect's defaults; passwords through the
environment. The tools take turns in a rotating order, round after round, and
each figure is the best of the rounds (three by default, so that each tool
runs once in each place: the first place in a round runs right after the
round's copy of the tree, and its no-change backup after the others' initial
backups, a minute after its own, when this host has paged out much of what
sat idle). Prints a table with ratios to restic and
writes bench/out/repo_vs_peers.json and bench/out/repo_vs_peers.md (the table
for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
OUT = HERE / "out"
PASSWORD = "bench-password"
MB = 1e6
TOOLS = ("haprotect", "restic", "borg")

CHILD = """
import sys
from haprotect.repo import open_repository
from haprotect.storage.local import LocalStore

action, repo_dir, path, password = sys.argv[1:5]
store = LocalStore(repo_dir)
if action == "init":
    from haprotect.repo import Repository
    Repository.init(store, password)
elif action == "backup":
    # as `haprotect repo backup` does: the key is derived while the modules
    # load and the walk starts
    snapshot = open_repository(store, password, background=True).backup([path])
    print(snapshot.id, flush=True)
elif action == "restore":
    repo = open_repository(store, password)
    stats = repo.restore(repo.snapshots()[-1].id, path)
    if stats.errors:
        sys.exit(f"restore errors: {stats.errors[:5]}")
"""


@dataclass
class Run:
    seconds: float
    cpu: float
    rss_mib: float
    synced: float = 0.0
    """Seconds until what the command wrote was on disk (``sync`` after it)."""


@dataclass
class ToolResult:
    initial: list[Run] = field(default_factory=list)
    unchanged: list[Run] = field(default_factory=list)
    mutated: list[Run] = field(default_factory=list)
    restore: list[Run] = field(default_factory=list)
    repo_bytes: list[int] = field(default_factory=list)
    added_bytes: list[int] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)


def measure(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Run:
    """Run ``argv``; wall seconds, CPU seconds and peak RSS of the child (rusage)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed with exit status {proc.returncode}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def tree_bytes(root: Path) -> tuple[int, int]:
    files = nbytes = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            files += 1
            nbytes += os.lstat(os.path.join(dirpath, name)).st_size
    return files, nbytes


def warm(root: Path) -> None:
    """Read every file once, so each tool starts with the tree in the page cache."""
    for dirpath, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                while f.read(8 << 20):
                    pass


def same_tree(a: Path, b: Path) -> bool:
    """Every file and directory of ``a`` is in ``b`` with the same bytes, and nothing more."""
    for (da, dirs_a, files_a), (db, dirs_b, files_b) in zip(os.walk(a), os.walk(b), strict=False):
        dirs_a.sort()
        dirs_b.sort()
        if Path(da).relative_to(a) != Path(db).relative_to(b):
            print(f"  differs: {da} vs {db}")
            return False
        if dirs_a != dirs_b or sorted(files_a) != sorted(files_b):
            print(f"  differs: entries of {da}")
            return False
        for name in files_a:
            if not same_file(os.path.join(da, name), os.path.join(db, name)):
                print(f"  differs: {os.path.join(da, name)}")
                return False
    return True


def same_file(x: str, y: str) -> bool:
    if os.path.getsize(x) != os.path.getsize(y):
        return False
    with open(x, "rb") as fx, open(y, "rb") as fy:
        while True:
            bx, by = fx.read(4 << 20), fy.read(4 << 20)
            if bx != by:
                return False
            if not bx:
                return True


class Tool:
    name = ""

    def __init__(self, work: Path) -> None:
        self.repo = work / f"repo-{self.name}"
        self.target = work / f"restore-{self.name}"
        self.env = {**os.environ}

    def reset(self) -> None:
        shutil.rmtree(self.repo, ignore_errors=True)
        shutil.rmtree(self.target, ignore_errors=True)

    def init(self) -> None:
        raise NotImplementedError

    def backup(self, src: Path) -> Run:
        raise NotImplementedError

    def restore(self) -> Run:
        raise NotImplementedError

    def size(self) -> int:
        return tree_bytes(self.repo)[1]


class Haprotect(Tool):
    name = "haprotect"

    def _child(self, *args: str) -> Run:
        return measure([sys.executable, "-c", CHILD, *args, PASSWORD], self.env)

    def init(self) -> None:
        self._child("init", str(self.repo), "-")

    def backup(self, src: Path) -> Run:
        return self._child("backup", str(self.repo), str(src))

    def restore(self) -> Run:
        return self._child("restore", str(self.repo), str(self.target))


class Restic(Tool):
    name = "restic"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env.update(
            RESTIC_PASSWORD=PASSWORD,
            RESTIC_REPOSITORY=str(self.repo),
            RESTIC_CACHE_DIR=str(work / "restic-cache"),
        )

    def reset(self) -> None:
        super().reset()
        shutil.rmtree(self.env["RESTIC_CACHE_DIR"], ignore_errors=True)

    def init(self) -> None:
        measure(["restic", "init", "--repository-version", "2"], self.env)

    def backup(self, src: Path) -> Run:
        return measure(["restic", "backup", "--quiet", "--host", "bench", str(src)], self.env)

    def restore(self) -> Run:
        return measure(
            ["restic", "restore", "--quiet", "latest", "--target", str(self.target)], self.env
        )


class Borg(Tool):
    name = "borg"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.base = work / "borg-base"
        self.env.update(
            BORG_PASSPHRASE=PASSWORD,
            BORG_REPO=str(self.repo),
            BORG_BASE_DIR=str(self.base),
            BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
            BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
        )
        self.count = 0

    def reset(self) -> None:
        super().reset()
        shutil.rmtree(self.base, ignore_errors=True)
        self.count = 0

    def init(self) -> None:
        measure(["borg", "init", "--encryption", "repokey"], self.env)

    def backup(self, src: Path) -> Run:
        self.count += 1
        return measure(
            ["borg", "create", "--compression", "zstd,3", f"::s{self.count}", str(src)], self.env
        )

    def restore(self) -> Run:
        self.target.mkdir(parents=True)
        return measure(["borg", "extract", f"::s{self.count}"], self.env, cwd=self.target)


TOOL_CLASSES: dict[str, Callable[[Path], Tool]] = {
    "haprotect": Haprotect,
    "restic": Restic,
    "borg": Borg,
}


def dataset_tool() -> Path:
    env = os.environ.get("HAPROTECT_BENCH_DATASET_TOOL")
    tool = Path(env) if env else REPO_ROOT.parent / "shared" / "bench" / "gen_dataset.py"
    if not tool.is_file():
        raise SystemExit(f"dataset tool not found at {tool}; set HAPROTECT_BENCH_DATASET_TOOL")
    return tool


def prepare(size_gib: float) -> Path:
    """The pristine dataset in bench/out, generated once."""
    base = OUT / f"dataset-{size_gib:g}g"
    if not (base / ".complete").exists():
        shutil.rmtree(base, ignore_errors=True)
        print(f"generating a {size_gib:g} GiB dataset in {base}", flush=True)
        cmd = [sys.executable, str(dataset_tool()), "generate", str(base)]
        subprocess.run([*cmd, "--size-gib", str(size_gib)], check=True)
        (base / ".complete").touch()
    return base


def cold(root: Path) -> None:
    """Drop ``root``'s files from the page cache, so a restore reads its repository from disk.

    What a backup leaves cached depends on how each tool writes (haprotect's
    data packs go around the page cache, restic's and borg's through it), and
    a restore is usually from a repository nobody read lately.
    """
    for dirpath, _, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def one_round(tools: list[Tool], base: Path, work: Path, results: dict[str, ToolResult]) -> int:
    src = work / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(base, src, ignore=shutil.ignore_patterns(".complete"))
    for tool in tools:
        tool.reset()
        tool.init()

    def timed(label: str, tool: Tool, action: Callable[[], Run]) -> Run:
        warm(src)
        # what an earlier step left to write is not written during this one
        os.sync()
        run = action()
        start = time.perf_counter()
        os.sync()
        run.synced = run.seconds + time.perf_counter() - start
        print(
            f"  {tool.name:10s} {label:10s} {run.seconds:7.2f} s  cpu {run.cpu:7.2f} s"
            f"  rss {run.rss_mib:6.0f} MiB  synced {run.synced:7.2f} s",
            flush=True,
        )
        return run

    for tool in tools:
        results[tool.name].initial.append(timed("initial", tool, lambda t=tool: t.backup(src)))
    for tool in tools:
        results[tool.name].unchanged.append(timed("unchanged", tool, lambda t=tool: t.backup(src)))
    before = {tool.name: tool.size() for tool in tools}
    subprocess.run([sys.executable, str(dataset_tool()), "mutate", str(src)], check=True)
    for tool in tools:
        r = results[tool.name]
        r.mutated.append(timed("mutated", tool, lambda t=tool: t.backup(src)))
        r.repo_bytes.append(tool.size())
        r.added_bytes.append(r.repo_bytes[-1] - before[tool.name])
    total = tree_bytes(src)[1]
    for tool in tools:
        r = results[tool.name]
        cold(tool.repo)
        r.restore.append(timed("restore", tool, tool.restore))
        ok = same_tree(src, tool.target / str(src).lstrip("/"))
        print(f"  {tool.name:10s} restored tree verified: {ok}", flush=True)
        r.verified.append(ok)
    # Deleted only now: ext4 here skips recently deleted inodes when it
    # allocates new ones, which would slow down whichever tool restores next.
    for tool in tools:
        shutil.rmtree(tool.target, ignore_errors=True)
    return total


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.seconds)


def summarise(
    results: dict[str, ToolResult], size: int, restored: int
) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for name, r in results.items():
        initial, unchanged = best(r.initial), best(r.unchanged)
        mutated, restore = best(r.mutated), best(r.restore)
        table[name] = {
            "initial_s": initial.seconds,
            "initial_mb_s": size / initial.seconds / MB,
            "initial_cpu_s": min(x.cpu for x in r.initial),
            "initial_rss_mib": max(x.rss_mib for x in r.initial),
            "unchanged_s": unchanged.seconds,
            "mutated_s": mutated.seconds,
            "added_mib": min(r.added_bytes) / 2**20,
            "repo_mib": min(r.repo_bytes) / 2**20,
            "restore_s": restore.seconds,
            "restore_mb_s": restored / restore.seconds / MB,
            "restore_synced_mb_s": restored / min(x.synced for x in r.restore) / MB,
            "restore_cpu_s": min(x.cpu for x in r.restore),
            "restore_rss_mib": max(x.rss_mib for x in r.restore),
            "verified": float(all(r.verified)),
        }
    return table


ROWS = [
    ("initial backup, MB/s", "initial_mb_s", "{:.0f}", True),
    ("initial backup, s", "initial_s", "{:.1f}", False),
    ("initial backup, CPU s", "initial_cpu_s", "{:.1f}", False),
    ("initial backup, peak RSS MiB", "initial_rss_mib", "{:.0f}", False),
    ("no-change backup, s", "unchanged_s", "{:.2f}", False),
    ("backup after mutate, s", "mutated_s", "{:.2f}", False),
    ("bytes added by it, MiB", "added_mib", "{:.1f}", False),
    ("repository size, MiB", "repo_mib", "{:.0f}", False),
    ("restore, MB/s", "restore_mb_s", "{:.0f}", True),
    ("restore until on disk (sync), MB/s", "restore_synced_mb_s", "{:.0f}", True),
    ("restore, CPU s", "restore_cpu_s", "{:.1f}", False),
    ("restore, peak RSS MiB", "restore_rss_mib", "{:.0f}", False),
]

# (metric, comparison, limit as a ratio to restic)
TARGETS = [
    ("initial_mb_s", ">=", 2.5),
    ("initial_cpu_s", "<=", 0.5),
    ("initial_rss_mib", "<=", 1.0),
    ("unchanged_s", "<", 0.4),
    ("mutated_s", "<", 0.5),
    ("added_mib", "<=", 0.6),
    ("repo_mib", "<=", 1.0),
    ("restore_mb_s", ">=", 1.5),
]


def render(table: dict[str, dict[str, float]]) -> str:
    names = [n for n in TOOLS if n in table]
    ref = table.get("restic")
    head = "| | " + " | ".join(names) + (" | haprotect ÷ restic | borg ÷ restic |" if ref else " |")
    lines = [head, "| --- |" + " ---: |" * (len(names) + (2 if ref else 0))]
    for label, key, fmt, _ in ROWS:
        cells = [fmt.format(table[n][key]) for n in names]
        if ref:
            for other in ("haprotect", "borg"):
                cells.append(
                    f"{table[other][key] / ref[key]:.2f}" if other in table and ref[key] else "-"
                )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    verified = ", ".join(f"{n} {'yes' if table[n]['verified'] else 'NO'}" for n in names)
    lines.append(
        f"| every restored byte verified | {verified} |" + " |" * (len(names) - 1 + 2 * bool(ref))
    )
    return "\n".join(lines)


def targets(table: dict[str, dict[str, float]]) -> list[tuple[str, float, str, float, bool]]:
    if "restic" not in table or "haprotect" not in table:
        return []
    out = []
    for key, op, limit in TARGETS:
        ratio = table["haprotect"][key] / table["restic"][key]
        met = {"<=": ratio <= limit, "<": ratio < limit, ">=": ratio >= limit}[op]
        out.append((key, ratio, op, limit, met))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    args, _ = parser.parse_known_args()
    for tool_name in args.tools:
        if tool_name != "haprotect" and shutil.which(tool_name) is None:
            raise SystemExit(f"{tool_name} is not installed: run scripts/bootstrap --bench as root")
    OUT.mkdir(exist_ok=True)
    # An installed haprotect has its bytecode compiled (pip does it); this checkout may not.
    compileall.compile_dir(str(HERE.parent / "src" / "haprotect"), quiet=1)
    base = prepare(args.size_gib)
    files, size = tree_bytes(base)
    work = OUT / "work"
    work.mkdir(exist_ok=True)
    tools = [TOOL_CLASSES[n](work) for n in args.tools]
    results = {t.name: ToolResult() for t in tools}
    restored = size
    for round_ in range(args.rounds):
        order = tools[round_ % len(tools) :] + tools[: round_ % len(tools)]
        print(f"round {round_ + 1}/{args.rounds}: {' '.join(t.name for t in order)}", flush=True)
        restored = one_round(order, base, work, results)
    for tool in tools:
        tool.reset()
    shutil.rmtree(work / "src", ignore_errors=True)
    table = summarise(results, size, restored)
    rendered = render(table)
    checks = targets(table)
    versions = {
        "restic": _version(["restic", "version"]),
        "borg": _version(["borg", "--version"]),
        "python": platform.python_version(),
    }
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {_mem_gib():.0f} GiB",
        "dataset": {"files": files, "bytes": size, "size_gib": args.size_gib},
        "rounds": args.rounds,
        "versions": versions,
        "table": table,
        "targets": [
            {"metric": k, "ratio": round(r, 3), "target": f"{op} {lim}", "met": met}
            for k, r, op, lim, met in checks
        ],
        "runs": {n: asdict(r) for n, r in results.items()},
    }
    (OUT / "repo_vs_peers.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "repo_vs_peers.md").write_text(rendered + "\n")
    print(f"\n{files} files, {size / MB:.0f} MB; best of {args.rounds} round(s)\n")
    print(rendered)
    for key, ratio, op, limit, met in checks:
        print(
            f"target {key}: haprotect/restic = {ratio:.2f} (want {op} {limit}): "
            f"{'met' if met else 'NOT met'}"
        )


def _version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not installed"


def _mem_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


if __name__ == "__main__":
    main()
