"""``haprotect repo`` as a user runs it: real processes, a directory and a real S3 server."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from haprotect.testing.repo import describe
from haprotect.testing.seaweedfs import SeaweedFS

HAPROTECT = str(Path(sys.executable).with_name("haprotect"))


def run(*args: str, password: str = "correct horse") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HAPROTECT_PASSWORD": password}
    return subprocess.run(
        [HAPROTECT, "repo", *args], capture_output=True, text=True, env=env, check=False
    )


def ok(*args: str) -> subprocess.CompletedProcess[str]:
    done = run(*args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and lines[-1]["type"] == "summary"
    assert all(line["type"] == "progress" for line in lines[:-1])
    return lines[-1]


def fill(root: Path, seed: int, files: int = 20) -> None:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"f{seed}-{i}").write_bytes(rng.randbytes(rng.randint(100, 300_000)))


def walk_through(url: str, tmp_path: Path, *, full: bool = True) -> None:
    """init, two backups, snapshots, restore, forget --prune, check --read-data, stats, unlock.

    Without ``full`` the commands whose storage access is the same as others' are left out.
    """
    src = tmp_path / "src"
    fill(src, 1)
    ok("init", url)
    first = summary(ok("backup", url, str(src), "--tag", "daily", "--host", "node1", "--json"))
    first_tree = describe(src)
    fill(src, 2)
    second = summary(ok("backup", url, str(src), "--host", "node1", "--json"))
    assert second["snapshot"]["stats"]["files_unchanged"] == 20, "the parent's files are reused"
    listed = summary(ok("snapshots", url, "--json"))["snapshots"]
    assert [s["id"] for s in listed] == [first["snapshot"]["id"], second["snapshot"]["id"]]
    if full:
        assert "2 snapshots" in ok("snapshots", url).stdout

    out = tmp_path / "restored-latest"
    ok("restore", url, "latest", "--target", str(out))
    assert describe(out / str(src).lstrip("/")) == describe(src)
    if full:
        sub = tmp_path / "restored-part"
        part = f"{src}/f1-3"
        ok("restore", url, first["snapshot"]["id"][:10], "--target", str(sub), "--include", part)
        assert os.listdir(sub / str(src).lstrip("/")) == ["f1-3"]

    forgot = summary(ok("forget", url, "--keep-last", "1", "--prune", "--json"))
    assert forgot["removed"] == [first["snapshot"]["id"]]
    assert forgot["prune"]["snapshots"] == 1 and forgot["prune"]["dry_run"] is False
    checked = summary(ok("check", url, "--read-data", "--json"))
    assert checked["ok"] is True and checked["packs_read"] == checked["packs"] > 0
    if not full:
        return
    assert "no errors" in ok("check", url, "--subset", "50%").stdout
    stats = summary(ok("stats", url, "--json"))
    assert stats["snapshots"] == 1 and stats["orphan_packs"] == 0
    again = tmp_path / "restored-again"
    ok("restore", url, second["snapshot"]["id"], "--target", str(again))
    assert describe(again / str(src).lstrip("/")) == describe(src)
    assert describe(again / str(src).lstrip("/")) != first_tree
    assert "no stale lock" in ok("unlock", url).stdout

    wrong = run("snapshots", url, password="wrong")
    assert wrong.returncode == 7
    assert wrong.stderr.startswith("haprotect: error: wrong passphrase for repository")


def test_repo_commands_end_to_end_on_a_directory(tmp_path: Path) -> None:
    walk_through(str(tmp_path / "repo"), tmp_path)


def test_repo_commands_end_to_end_on_s3(seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    walk_through(seaweedfs.url(f"repo-cli-{time.time_ns()}"), tmp_path, full=False)


def test_concurrent_backups_to_s3_both_land(seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    url = seaweedfs.url(f"repo-concurrent-{time.time_ns()}")
    ok("init", url)
    trees = [tmp_path / "a", tmp_path / "b"]
    for seed, tree in enumerate(trees, 10):
        fill(tree, seed, files=30)
    env = {**os.environ, "HAPROTECT_PASSWORD": "correct horse"}
    procs = [
        subprocess.Popen(
            [HAPROTECT, "repo", "backup", url, str(tree), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tree in trees
    ]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        ids.append(json.loads(out.splitlines()[-1])["snapshot"]["id"])
    listed = summary(ok("snapshots", url, "--json"))["snapshots"]
    assert sorted(s["id"] for s in listed) == sorted(ids)
    assert summary(ok("check", url, "--read-data", "--json"))["ok"] is True
