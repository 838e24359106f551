"""Repository: haprotect against restic and borg through their commands, warm and cold, in one run.

    .venv/bin/python bench/repo_vs_peers.py [--rounds 3] [--size-gib 2.0]
        [--cache warm|cold|both] [--tools haprotect restic borg haprotect-api]

Every tool is timed through the command a user runs: ``haprotect`` is the
installed console script beside this interpreter (``haprotect repo init``,
``haprotect repo backup REPO SRC``, ``haprotect repo restore REPO latest
--target T``, the passphrase in ``$HAPROTECT_PASSWORD``), restic and borg
their own commands. ``--tools haprotect-api`` adds haprotect's library call
in a child process (``open_repository(...).backup(...)``, what this benchmark
timed before) as a second haprotect column, to tell the command line's own
cost from the repository's. It is not run by default: it adds a fourth of a
round's time (a fourth tool, though the fastest) for a diagnostic figure no
target is set on.

The tree is made by the shared dataset tool (``../shared/bench/gen_dataset.py``
relative to the repository, or ``$HAPROTECT_BENCH_DATASET_TOOL``): a seeded
mix of logs, random binaries, page-structured database files and many small
files, kept in bench/out/dataset-<size>g and reused. Each round runs one pass
per cache mode; a pass copies the tree to bench/out/work/src and, for each
tool in turn, measures

1. the initial backup into a new local repository: wall seconds, MB/s, CPU
   seconds (user + system) and peak RSS of the child, from ``os.wait4``;
2. a backup with nothing changed: seconds and peak RSS;
3. after the dataset tool's ``mutate`` step (run once, so every tool sees
   the same change), a backup: time and the bytes it added to the repository;
4. the repository's size;
5. a full restore of the latest snapshot: MB/s when the tool exits, and when
   what it wrote is on disk (a ``sync`` after it: a tool that leaves
   gigabytes to the page cache has not finished writing them); then,
   outside the timing, every restored file is compared byte for byte with
   the source.

Before each timed step everything is synced (no step writes out what an
earlier one left behind), then, by cache mode:

- warm: the step's input is read once (the tree before a backup; the
  tool's repository and its local cache before a restore), as for a backup
  run again soon after the last;
- cold: the page cache is dropped (``echo 3 > /proc/sys/vm/drop_caches``,
  as root): the tree, the repository, the tools' caches, and Python with
  haprotect's modules come from disk, as on a user's first run. Where the
  kernel refuses, the tree, the repositories and the tools' caches are
  evicted file by file (``POSIX_FADV_DONTNEED``), the interpreter and the
  tools' binaries stay cached, and the output says so.

Every tool gets the same settings where they have one: zstd level 3 for
borg, restic's default (auto, zstd) in a version 2 repository, haprotect's
defaults; passwords through the environment. The tools take turns in a
rotating order, round after round (three rounds by default, so that each
tool runs once in each place). The figures are, for each tool, the median
over the rounds, and for the ratios to restic, the median of the per-round
ratios (each tool's figure over restic's in the same pass) with their range
over the rounds. The targets (haprotect ÷ restic: initial backup time
<= 0.4, no-change backup time <= 0.4 and peak RSS <= 1.0, after the
mutation time <= 0.5 and bytes added <= 0.6, restore time <= 0.5) are
checked in each cache mode and printed as met or NOT met. Writes
bench/out/repo_vs_peers.json and bench/out/repo_vs_peers.md (the tables for
docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
OUT = HERE / "out"
PASSWORD = "bench-password"
MB = 1e6
HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
TOOLS = ("haprotect", "haprotect-api", "restic", "borg")
DEFAULT_TOOLS = ("haprotect", "restic", "borg")
CACHES = ("warm", "cold")
DROP_CACHES = Path("/proc/sys/vm/drop_caches")

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
    """One tool's measures in one cache mode, one entry per round."""

    initial: list[Run] = field(default_factory=list)
    unchanged: list[Run] = field(default_factory=list)
    mutated: list[Run] = field(default_factory=list)
    restore: list[Run] = field(default_factory=list)
    repo_bytes: list[int] = field(default_factory=list)
    added_bytes: list[int] = field(default_factory=list)
    restored_bytes: list[int] = field(default_factory=list)
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


def files_under(root: Path) -> list[str]:
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names]


def read_all(root: Path) -> None:
    """Read every file under ``root`` once, into the page cache."""
    for path in files_under(root):
        with open(path, "rb") as f:
            while f.read(8 << 20):
                pass


def evict(root: Path) -> None:
    """Drop ``root``'s files from the page cache (written out first)."""
    for path in files_under(root):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def drop_page_cache() -> bool:
    """Sync, then drop the whole page cache and slab caches; False if the kernel refuses."""
    os.sync()
    try:
        DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


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

    def caches(self) -> list[Path]:
        """What the tool keeps outside its repository between runs."""
        return []

    def reset(self) -> None:
        shutil.rmtree(self.repo, ignore_errors=True)
        shutil.rmtree(self.target, ignore_errors=True)
        for path in self.caches():
            shutil.rmtree(path, ignore_errors=True)

    def init(self) -> None:
        raise NotImplementedError

    def backup(self, src: Path) -> Run:
        raise NotImplementedError

    def restore(self) -> Run:
        raise NotImplementedError

    def size(self) -> int:
        return tree_bytes(self.repo)[1]


class Haprotect(Tool):
    """The installed console script, as a user runs it."""

    name = "haprotect"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env["HAPROTECT_PASSWORD"] = PASSWORD

    def init(self) -> None:
        measure([HAPROTECT, "repo", "init", str(self.repo)], self.env)

    def backup(self, src: Path) -> Run:
        return measure([HAPROTECT, "repo", "backup", str(self.repo), str(src)], self.env)

    def restore(self) -> Run:
        argv = [HAPROTECT, "repo", "restore", str(self.repo), "latest"]
        return measure([*argv, "--target", str(self.target)], self.env)


class HaprotectApi(Tool):
    """haprotect's library call in a child process: the repository without the CLI."""

    name = "haprotect-api"

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

    def caches(self) -> list[Path]:
        return [Path(self.env["RESTIC_CACHE_DIR"])]

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

    def caches(self) -> list[Path]:
        return [self.base]

    def reset(self) -> None:
        super().reset()
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
    "haprotect-api": HaprotectApi,
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


class Cache:
    """Puts the page cache in a mode's state before each timed step."""

    def __init__(self, mode: str, tools: list[Tool], src: Path, can_drop: bool) -> None:
        self.mode, self.tools, self.src, self.can_drop = mode, tools, src, can_drop

    def before(self, inputs: list[Path]) -> None:
        if self.mode == "warm":
            for path in inputs:
                read_all(path)
            os.sync()
        elif not (self.can_drop and drop_page_cache()):
            for tool in self.tools:
                for path in [tool.repo, *tool.caches()]:
                    evict(path)
            evict(self.src)
            os.sync()


def one_pass(
    tools: list[Tool], base: Path, work: Path, cache: Cache, results: dict[str, ToolResult]
) -> None:
    """Each step of each tool once, in one cache mode, on a fresh copy of the tree."""
    src = cache.src
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(base, src, ignore=shutil.ignore_patterns(".complete"))
    for tool in tools:
        tool.reset()
        tool.init()

    def timed(label: str, tool: Tool, action: Callable[[], Run], inputs: list[Path]) -> Run:
        cache.before(inputs)
        run = action()
        start = time.perf_counter()
        os.sync()
        run.synced = run.seconds + time.perf_counter() - start
        print(
            f"  {cache.mode:4s} {tool.name:13s} {label:9s} {run.seconds:7.2f} s"
            f"  cpu {run.cpu:7.2f} s  rss {run.rss_mib:6.0f} MiB  synced {run.synced:7.2f} s",
            flush=True,
        )
        return run

    for tool in tools:
        run = timed("initial", tool, partial(tool.backup, src), [src])
        results[tool.name].initial.append(run)
    for tool in tools:
        run = timed("unchanged", tool, partial(tool.backup, src), [src])
        results[tool.name].unchanged.append(run)
    before = {tool.name: tool.size() for tool in tools}
    subprocess.run([sys.executable, str(dataset_tool()), "mutate", str(src)], check=True)
    for tool in tools:
        r = results[tool.name]
        r.mutated.append(timed("mutated", tool, partial(tool.backup, src), [src]))
        r.repo_bytes.append(tool.size())
        r.added_bytes.append(r.repo_bytes[-1] - before[tool.name])
    restored = tree_bytes(src)[1]
    for tool in tools:
        r = results[tool.name]
        r.restore.append(timed("restore", tool, tool.restore, [tool.repo, *tool.caches()]))
        r.restored_bytes.append(restored)
        ok = same_tree(src, tool.target / str(src).lstrip("/"))
        print(f"  {cache.mode:4s} {tool.name:13s} restored tree verified: {ok}", flush=True)
        r.verified.append(ok)
    # Deleted only now: ext4 here skips recently deleted inodes when it
    # allocates new ones, which would slow down whichever tool restores next.
    for tool in tools:
        shutil.rmtree(tool.target, ignore_errors=True)


def figures(r: ToolResult, size: int) -> list[dict[str, float]]:
    """Each round's figures of one tool in one cache mode."""
    rounds = []
    for i, initial in enumerate(r.initial):
        unchanged, mutated, restore = r.unchanged[i], r.mutated[i], r.restore[i]
        restored = r.restored_bytes[i]
        rounds.append(
            {
                "initial_s": initial.seconds,
                "initial_mb_s": size / initial.seconds / MB,
                "initial_cpu_s": initial.cpu,
                "initial_rss_mib": initial.rss_mib,
                "unchanged_s": unchanged.seconds,
                "unchanged_rss_mib": unchanged.rss_mib,
                "mutated_s": mutated.seconds,
                "added_mib": r.added_bytes[i] / 2**20,
                "repo_mib": r.repo_bytes[i] / 2**20,
                "restore_s": restore.seconds,
                "restore_mb_s": restored / restore.seconds / MB,
                "restore_synced_mb_s": restored / restore.synced / MB,
                "restore_cpu_s": restore.cpu,
                "restore_rss_mib": restore.rss_mib,
            }
        )
    return rounds


@dataclass
class Ratio:
    """A tool's figure over restic's: the median of the per-round ratios and their range."""

    median: float
    low: float
    high: float
    rounds: list[float]

    def text(self) -> str:
        if len(self.rounds) == 1:
            return f"{self.median:.2f}"
        return f"{self.median:.2f} ({self.low:.2f}-{self.high:.2f})"


def ratio(mine: list[dict[str, float]], ref: list[dict[str, float]], key: str) -> Ratio | None:
    per_round = [m[key] / r[key] for m, r in zip(mine, ref, strict=True) if r[key]]
    if not per_round:
        return None
    return Ratio(statistics.median(per_round), min(per_round), max(per_round), per_round)


def medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


ROWS = [
    ("initial backup, MB/s", "initial_mb_s", "{:.0f}"),
    ("initial backup, s", "initial_s", "{:.1f}"),
    ("initial backup, CPU s", "initial_cpu_s", "{:.1f}"),
    ("initial backup, peak RSS MiB", "initial_rss_mib", "{:.0f}"),
    ("no-change backup, s", "unchanged_s", "{:.2f}"),
    ("no-change backup, peak RSS MiB", "unchanged_rss_mib", "{:.0f}"),
    ("backup after mutate, s", "mutated_s", "{:.2f}"),
    ("bytes added by it, MiB", "added_mib", "{:.1f}"),
    ("repository size, MiB", "repo_mib", "{:.0f}"),
    ("restore, s", "restore_s", "{:.2f}"),
    ("restore, MB/s", "restore_mb_s", "{:.0f}"),
    ("restore until on disk (sync), MB/s", "restore_synced_mb_s", "{:.0f}"),
    ("restore, CPU s", "restore_cpu_s", "{:.1f}"),
    ("restore, peak RSS MiB", "restore_rss_mib", "{:.0f}"),
]

# (label, metric, limit of haprotect ÷ restic)
TARGETS = [
    ("initial backup time", "initial_s", 0.4),
    ("no-change backup time", "unchanged_s", 0.4),
    ("no-change backup peak RSS", "unchanged_rss_mib", 1.0),
    ("after the mutation: time", "mutated_s", 0.5),
    ("after the mutation: bytes added", "added_mib", 0.6),
    ("restore time", "restore_s", 0.5),
]
RESTORE_LABEL = {"warm": "repository in page cache", "cold": "page cache dropped"}
RESTORE_LABEL_EVICTED = "repository evicted from the page cache"


@dataclass
class Summary:
    """Per cache mode: each tool's medians, and its per-round ratios to restic."""

    medians: dict[str, dict[str, dict[str, float]]]
    ratios: dict[str, dict[str, dict[str, Ratio]]]
    verified: dict[str, dict[str, bool]]


def summarise(results: dict[str, dict[str, ToolResult]], size: int) -> Summary:
    summary = Summary({}, {}, {})
    for mode, by_tool in results.items():
        rounds = {name: figures(r, size) for name, r in by_tool.items()}
        summary.medians[mode] = {name: medians(f) for name, f in rounds.items()}
        summary.verified[mode] = {name: all(r.verified) for name, r in by_tool.items()}
        summary.ratios[mode] = {}
        if "restic" not in rounds:
            continue
        for name, f in rounds.items():
            if name == "restic":
                continue
            pairs = {key: ratio(f, rounds["restic"], key) for _, key, _ in ROWS}
            summary.ratios[mode][name] = {k: v for k, v in pairs.items() if v is not None}
    return summary


@dataclass
class Check:
    mode: str
    tool: str
    label: str
    metric: str
    ratio: Ratio
    limit: float

    @property
    def met(self) -> bool:
        return self.ratio.median <= self.limit


def checks(summary: Summary) -> list[Check]:
    out = []
    for mode, by_tool in summary.ratios.items():
        for tool in ("haprotect", "haprotect-api"):
            for label, key, limit in TARGETS:
                found = by_tool.get(tool, {}).get(key)
                if found is not None:
                    out.append(Check(mode, tool, label, key, found, limit))
    return out


def render_targets(found: list[Check], rounds: int) -> str:
    """The issue's table: haprotect ÷ restic per cache mode, against its targets."""
    modes = [m for m in CACHES if any(c.mode == m for c in found)]
    tools = [t for t in ("haprotect", "haprotect-api") if any(c.tool == t for c in found)]
    kind = {"haprotect": "command", "haprotect-api": "library call"}
    columns = [(t, m) for t in tools for m in modes]
    spread = " (min-max)" if rounds > 1 else ""
    head = [f"haprotect ÷ restic, median of the per-round ratios of {rounds} round(s){spread}"]
    head += [f"{kind[t]}, {m}" for t, m in columns] + ["target"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for label, key, limit in TARGETS:
        cells = []
        for t, m in columns:
            c = next((c for c in found if (c.tool, c.mode, c.metric) == (t, m, key)), None)
            cells.append("-" if c is None else f"{c.ratio.text()} {'met' if c.met else 'NOT met'}")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | <= {limit} |")
    return "\n".join(lines)


def render_mode(summary: Summary, mode: str, restore_label: str) -> str:
    """All figures of one cache mode: each tool's medians, ratios to restic."""
    table = summary.medians[mode]
    names = [n for n in TOOLS if n in table]
    others = [n for n in names if n in summary.ratios[mode]]
    head = [f"{mode} (restore: {restore_label})", *names]
    head += [f"{n} ÷ restic" for n in others]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for label, key, fmt in ROWS:
        cells = [fmt.format(table[n][key]) for n in names]
        for n in others:
            found = summary.ratios[mode][n].get(key)
            cells.append("-" if found is None else found.text())
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    verified = ", ".join(f"{n} {'yes' if summary.verified[mode][n] else 'NO'}" for n in names)
    lines.append(f"| every restored byte verified | {verified} |" + " |" * (len(head) - 2))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--tools", nargs="+", default=list(DEFAULT_TOOLS), choices=TOOLS)
    parser.add_argument("--cache", choices=(*CACHES, "both"), default="both")
    args, _ = parser.parse_known_args()
    for tool_name in args.tools:
        if tool_name in ("restic", "borg") and shutil.which(tool_name) is None:
            raise SystemExit(f"{tool_name} is not installed: run scripts/bootstrap --bench as root")
    if "haprotect" in args.tools and not os.access(HAPROTECT, os.X_OK):
        raise SystemExit(f"{HAPROTECT} not found: install haprotect in this environment")
    modes = list(CACHES) if args.cache == "both" else [args.cache]
    can_drop = "cold" in modes and drop_page_cache()
    cold_method = ""
    if "cold" in modes:
        cold_method = (
            f"page cache dropped ({DROP_CACHES})"
            if can_drop
            else f"{DROP_CACHES} refused: only the tree, the repositories and the tools' caches "
            "evicted (POSIX_FADV_DONTNEED); Python and the tools' binaries stay cached"
        )
        print(f"cold: {cold_method}", flush=True)
    OUT.mkdir(exist_ok=True)
    # An installed haprotect has its bytecode compiled (pip does it); this checkout may not.
    compileall.compile_dir(str(HERE.parent / "src" / "haprotect"), quiet=1)
    base = prepare(args.size_gib)
    files, size = tree_bytes(base)
    work = OUT / "work"
    work.mkdir(exist_ok=True)
    src = work / "src"
    tools = [TOOL_CLASSES[n](work) for n in args.tools]
    results = {m: {t.name: ToolResult() for t in tools} for m in modes}
    started = time.perf_counter()
    for round_ in range(args.rounds):
        order = tools[round_ % len(tools) :] + tools[: round_ % len(tools)]
        print(f"round {round_ + 1}/{args.rounds}: {' '.join(t.name for t in order)}", flush=True)
        for mode in modes:
            one_pass(order, base, work, Cache(mode, tools, src, can_drop), results[mode])
    elapsed = time.perf_counter() - started
    for tool in tools:
        tool.reset()
    shutil.rmtree(src, ignore_errors=True)
    summary = summarise(results, size)
    found = checks(summary)
    labels = {**RESTORE_LABEL, **({} if can_drop else {"cold": RESTORE_LABEL_EVICTED})}
    rendered = "\n\n".join(
        [render_targets(found, args.rounds), *(render_mode(summary, m, labels[m]) for m in modes)]
    )
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
        "caches": modes,
        "cold": cold_method,
        "seconds": round(elapsed, 1),
        "versions": versions,
        "medians": summary.medians,
        "ratios_to_restic": {
            mode: {n: {k: asdict(v) for k, v in by.items()} for n, by in tools_.items()}
            for mode, tools_ in summary.ratios.items()
        },
        "targets": [
            {
                "cache": c.mode,
                "tool": c.tool,
                "metric": c.metric,
                "ratio": round(c.ratio.median, 3),
                "per_round": [round(x, 3) for x in c.ratio.rounds],
                "target": f"<= {c.limit}",
                "met": c.met,
            }
            for c in found
        ],
        "verified": summary.verified,
        "runs": {m: {n: asdict(r) for n, r in by.items()} for m, by in results.items()},
    }
    (OUT / "repo_vs_peers.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "repo_vs_peers.md").write_text(rendered + "\n")
    print(
        f"\n{files} files, {size / MB:.0f} MB; {args.rounds} round(s), caches {', '.join(modes)},"
        f" {elapsed / 60:.1f} min\n"
    )
    print(rendered)
    print()
    for c in found:
        print(
            f"target {c.label}, {c.tool}, {c.mode}: ÷ restic = {c.ratio.text()}"
            f" (want <= {c.limit}): {'met' if c.met else 'NOT met'}"
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
