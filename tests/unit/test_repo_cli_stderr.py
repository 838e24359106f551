"""``haprotect repo backup`` as a process: what it leaves on standard error."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from haprotect.repo import KdfParams, Repository
from haprotect.storage.local import LocalStore

HAPROTECT = str(Path(sys.executable).with_name("haprotect"))


def run(*args: str, file_size_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [HAPROTECT, "repo", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HAPROTECT_PASSWORD": "secret"},
        check=False,
        timeout=120,
        preexec_fn=limit,
    )


def test_a_backup_whose_readers_fork_prints_nothing_on_stderr(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    Repository.init(LocalStore(repo), "secret", kdf=KdfParams(n=1 << 10))
    tree = tmp_path / "many"
    for d in range(8):
        (tree / f"d{d}").mkdir(parents=True)
        for f in range(250):  # 2,000 small files: more than four batches, so readers fork
            (tree / f"d{d}" / f"f{f}").write_bytes(os.urandom(f % 97))
    done = run("backup", str(repo), str(tree), "--readers", "2")
    assert done.returncode == 0, done.stderr
    assert "2000 files" in done.stdout
    assert done.stderr == ""


def test_a_store_that_cannot_take_a_pack_is_named_once_with_the_key(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    Repository.init(LocalStore(repo), "secret", kdf=KdfParams(n=1 << 10))
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "f").write_bytes(os.urandom(3 << 20))
    # a file size limit makes the pack's write fail (EFBIG) as a full disk would (ENOSPC)
    done = run("backup", str(repo), str(tmp_path / "big"), file_size_limit=200 << 10)
    assert done.returncode == 6, done.stderr
    error, hint = done.stderr.splitlines()
    assert error.startswith(f"haprotect: error: {repo.as_uri()}: data/"), error
    assert error.endswith(": File too large") and error.count(str(repo)) == 1, error
    assert hint.startswith("hint: ")
