"""Running Pacemaker's own command-line tools."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from haprotect.errors import ComponentError

INSTALL_HINT = "install Pacemaker's CLI (Debian: apt-get install pacemaker-cli-utils)"


def run_tool(argv: list[str], timeout: float, cib_file: Path | None = None) -> bytes:
    """Run a Pacemaker tool; any failure is one ComponentError line."""
    if shutil.which(argv[0]) is None:
        raise ComponentError(f"{argv[0]} is not installed", hint=INSTALL_HINT)
    env = dict(os.environ)
    if cib_file is not None:
        env["CIB_file"] = str(cib_file)
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise ComponentError(f"{' '.join(argv)} did not answer within {timeout:g}s") from None
    if done.returncode != 0:
        detail = next(
            (ln for ln in done.stderr.decode(errors="replace").splitlines() if ln.strip()),
            f"exit status {done.returncode}",
        )
        where = f" on {cib_file}" if cib_file else ""
        raise ComponentError(f"{argv[0]}{where} failed: {detail.strip()}")
    return done.stdout


def query_cib(timeout: float) -> bytes:
    return run_tool(["cibadmin", "--query"], timeout)
