"""``haprotect repo backup`` loads what a backup needs: no policy layer, no pydantic.

Checking the repository URL once loaded the whole policy package (pydantic
schemas, YAML) before the key derivation could start, and typer coerced the
command's parameters through pydantic; a fresh interpreter runs the command
and lists what it loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from haprotect.repo import KdfParams, Repository
from haprotect.storage.local import LocalStore

CHILD = """
import contextlib, json, sys
from haprotect.cli.main import app
with contextlib.suppress(SystemExit):
    app(sys.argv[1:], prog_name="haprotect")
print(json.dumps(sorted(sys.modules)))
"""


def test_a_command_line_backup_loads_no_policy_module_nor_pydantic(tmp_path: Path) -> None:
    Repository.init(LocalStore(tmp_path / "repo"), "pw", kdf=KdfParams(n=1 << 10))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"x" * 1000)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "HAPROTECT_PASSWORD": "pw",
        "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    argv = ["repo", "backup", "--json", str(tmp_path / "repo"), str(tmp_path / "src")]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert json.loads(lines[-2])["type"] == "summary"
    modules = json.loads(lines[-1])
    assert [m for m in modules if m.startswith(("haprotect.policy", "yaml", "pydantic"))] == []
