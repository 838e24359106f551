"""The CLI starts without the engine: help loads none of the heavy modules.

A fresh interpreter imports :mod:`haprotect.cli.main` and prints the help of
the application and of every command (found by walking the application, so a
new command is held to it too); after each, the modules it loaded must
include none that only running a command needs: the engine, pydantic,
psycopg, the repository's cryptography, compression and hashing, and the
service's web framework (FastAPI, Starlette, uvicorn), SQLAlchemy and Alembic.
"""

from __future__ import annotations

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
)

CHILD = """
import contextlib, io, json, sys
import typer
from typer.core import TyperGroup

FORBIDDEN = tuple(sys.argv[1:])

def loaded():
    return sorted(
        name for name in sys.modules
        if any(name == root or name.startswith(root + ".") for root in FORBIDDEN)
    )

found = {"import haprotect.cli.main": None}
import haprotect.cli.main
found["import haprotect.cli.main"] = loaded()

from haprotect.cli.main import app

def walk(command, path):
    yield path
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))

paths = list(walk(typer.main.get_command(app), ()))
for path in paths:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        app([*path, "--help"], prog_name="haprotect")
    assert "Usage:" in out.getvalue(), (path, out.getvalue())
    found[" ".join(("haprotect", *path, "--help"))] = loaded()
print(json.dumps({"paths": len(paths), "found": found}))
"""


def help_imports() -> dict[str, object]:
    """What a fresh interpreter loaded of FORBIDDEN after each help it printed."""
    src = Path(__file__).resolve().parents[2] / "src"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
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
