"""Running Pacemaker's own command-line tools.

Every failure (tool missing, timeout, non-zero exit, killed by a signal)
becomes one :class:`ComponentError` line naming the tool, what it ran on and
the first stderr line worth showing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from haprotect.errors import ComponentError

INSTALL_HINT = "install Pacemaker's CLI (Debian: apt-get install pacemaker-cli-utils)"


def run_tool(argv: list[str], timeout: float, cib_file: Path | None = None) -> bytes:
    """Run a Pacemaker tool (on ``cib_file`` through ``CIB_file``) and return its stdout."""
    tool = argv[0]
    exe = shutil.which(tool)
    if exe is None:
        raise ComponentError(f"{tool} is not installed", hint=INSTALL_HINT)
    env = dict(os.environ)
    if cib_file is not None:
        env["CIB_file"] = str(cib_file)
    where = f" on {cib_file}" if cib_file is not None else ""
    try:
        done = subprocess.run(
            [exe, *argv[1:]], capture_output=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise ComponentError(f"{tool} timed out after {timeout:g}s{where}") from None
    except OSError as exc:
        raise ComponentError(f"cannot run {tool}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise ComponentError(f"{tool} {_exit_text(done.returncode)}{where}{_first_line(done)}")
    return done.stdout


def query_cib(timeout: float) -> bytes:
    return run_tool(["cibadmin", "--query"], timeout)


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _first_line(done: subprocess.CompletedProcess[bytes]) -> str:
    """``: <the first stderr line worth showing>``, or nothing.

    Pacemaker's tools print ``INFO:`` and ``DEBUG:`` notes when they upgrade
    an old CIB's schema; those are skipped unless nothing else was printed.
    """
    lines = [ln.strip() for ln in done.stderr.decode("utf-8", "replace").splitlines()]
    lines = [ln for ln in lines if ln]
    notes = ("INFO:", "DEBUG:")
    chosen = next((ln for ln in lines if not ln.startswith(notes)), lines[0] if lines else "")
    return f": {chosen}" if chosen else ""
