"""``haprotect repo copy`` as a user runs it: a local repository to S3 on SeaweedFS, and back."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from haprotect.testing.repo import MiB, describe
from haprotect.testing.seaweedfs import SeaweedFS

HAPROTECT = str(Path(sys.executable).with_name("haprotect"))


def ok(*args: str, password: str) -> dict[str, Any]:
    """Run ``haprotect repo ARGS --json``; its summary."""
    env = {**os.environ, "HAPROTECT_PASSWORD": password}
    done = subprocess.run(
        [HAPROTECT, "repo", *args, "--json"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    last: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert last["type"] == "summary"
    return last


def fill(root: Path, seed: int) -> None:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(40):
        (root / f"small-{seed}-{i}").write_bytes(rng.randbytes(rng.randint(0, 60_000)))
    (root / f"big-{seed}").write_bytes(rng.randbytes(5 * MiB))


def test_a_copy_to_s3_and_back_restores_byte_for_byte(seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    local, back = str(tmp_path / "local"), str(tmp_path / "back")
    s3 = seaweedfs.url(f"repo-copy-{time.time_ns()}")
    passes = {}
    for name, secret in (("local", "local secret"), ("s3", "s3 secret"), ("back", "back secret")):
        passes[name] = tmp_path / f"{name}.pass"
        passes[name].write_text(secret + "\n")
    ok("init", local, password="local secret")
    ok("init", s3, password="s3 secret")
    ok("init", back, password="back secret")
    src = tmp_path / "src"
    fill(src, 1)
    first = ok("backup", local, str(src), password="local secret")["snapshot"]["id"]
    seen_first = describe(src)
    fill(src, 2)
    added = sum(p.stat().st_size for p in src.iterdir() if p.name.split("-")[1] == "2")
    second = ok("backup", local, str(src), password="local secret")["snapshot"]["id"]
    seen_second = describe(src)

    to_s3 = ["copy", local, s3, "--to-password-file", str(passes["s3"])]
    done = ok(*to_s3, password="local secret")
    assert done["copied"] == 2 and {s["source"] for s in done["snapshots"]} == {first, second}
    # the second snapshot's files from the first are mapped through its copy, not read again
    one, two = done["snapshots"]
    assert two["bytes_read"] == added and one["bytes_read"] > 5 * MiB
    assert ok(*to_s3, password="local secret")["copied"] == 0

    ok("check", s3, "--read-data", password="s3 secret")  # exits 7 on an error
    copies = {s["source"]: s["target"] for s in done["snapshots"]}
    out = tmp_path / "out-s3"
    ok("restore", s3, copies[second], "--target", str(out), password="s3 secret")
    assert describe(out / str(src).lstrip("/")) == seen_second

    # and back, into a third repository: again only the missing chunks, and whole
    back_done = ok(
        "copy", s3, back, "--to-password-file", str(passes["back"]), password="s3 secret"
    )
    assert back_done["copied"] == 2
    ok("check", back, "--read-data", password="back secret")
    returned = {s["source"]: s["target"] for s in back_done["snapshots"]}
    out = tmp_path / "out-back"
    ok("restore", back, returned[copies[first]], "--target", str(out), password="back secret")
    assert describe(out / str(src).lstrip("/")) == seen_first
    # copying the copies back into the original repository copies nothing
    home = ok("copy", s3, local, "--to-password-file", str(passes["local"]), password="s3 secret")
    assert home["copied"] == 0 and home["already_copied"] == 2
