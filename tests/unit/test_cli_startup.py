"""The CLI starts without the engine: help loads none of the heavy modules.

A fresh interpreter imports :mod:`haprotect.cli.main` and prints the help of
the application, which must load no verb's module, and of every command
(found by walking the application, so a new command is held to it too);
after each, the modules it loaded must
include none that only running a command needs: the engine, pydantic,
psycopg, the repository's cryptography, compression and hashing, and the
service's web framework (FastAPI, Starlette, uvicorn), SQLAlchemy and Alembic, and
the Kubernetes client.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

FORBIDDEN = (
    "haprotect.engine",
    "pydantic",
    "psycopg",
    "cryptography",
    "zstandard",
    "blake3",
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "kubernetes",
)

CHILD = """
import contextlib, io, json, sys

FORBIDDEN = tuple(sys.argv[1:])

def loaded():
    return sorted(
        name for name in sys.modules
        if any(name == root or name.startswith(root + ".") for root in FORBIDDEN)
    )

def verbs_loaded():
    return sorted(name for name in sys.modules if name.startswith("haprotect.cli.") and
                  name.rpartition(".")[2] in SUMMARIES)

found = {"import haprotect.cli.main": None}
import haprotect.cli.main
from haprotect.cli.main import app
from haprotect.cli.verbs import SUMMARIES
found["import haprotect.cli.main"] = loaded()

out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    app(["--help"], prog_name="haprotect")
assert all(verb in out.getvalue() for verb in SUMMARIES), out.getvalue()
verbs_after_help = verbs_loaded()

from tests.cli_commands import command_paths
paths = command_paths(groups=True)
for path in paths:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        app([*path, "--help"], prog_name="haprotect")
    assert "Usage:" in out.getvalue(), (path, out.getvalue())
    found[" ".join(("haprotect", *path, "--help"))] = loaded()
print(json.dumps({"paths": len(paths), "found": found, "verbs_after_help": verbs_after_help}))
"""


@functools.cache
def help_imports() -> dict[str, object]:
    """What a fresh interpreter loaded of FORBIDDEN after each help it printed."""
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(root / "src"), str(root), os.environ.get("PYTHONPATH", "")]
        ),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *FORBIDDEN],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_help_of_the_application_and_every_command_loads_no_heavy_module() -> None:
    result = help_imports()
    assert isinstance(result["paths"], int) and result["paths"] > 20
    found = result["found"]
    assert isinstance(found, dict)
    assert {step: modules for step, modules in found.items() if modules} == {}


def test_the_application_s_help_loads_no_verb() -> None:
    assert help_imports()["verbs_after_help"] == []
