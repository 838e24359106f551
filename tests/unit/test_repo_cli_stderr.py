"""``haprotect repo backup`` as a process: what it leaves on standard error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from haprotect.repo import KdfParams, Repository
from haprotect.storage.local import LocalStore

HAPROTECT = str(Path(sys.executable).with_name("haprotect"))


def test_a_backup_whose_readers_fork_prints_nothing_on_stderr(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    Repository.init(LocalStore(repo), "secret", kdf=KdfParams(n=1 << 10))
    tree = tmp_path / "many"
    for d in range(8):
        (tree / f"d{d}").mkdir(parents=True)
        for f in range(250):  # 2,000 small files: more than four batches, so readers fork
            (tree / f"d{d}" / f"f{f}").write_bytes(os.urandom(f % 97))
    done = subprocess.run(
        [HAPROTECT, "repo", "backup", str(repo), str(tree), "--readers", "2"],
        capture_output=True,
        text=True,
        env={**os.environ, "HAPROTECT_PASSWORD": "secret"},
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "2000 files" in done.stdout
    assert done.stderr == ""
