"""Running an argument list with a timeout that really ends it, keeping its last lines.

Every program a quiescer runs (hooks, ``fsfreeze``, Pacemaker's tools) goes
through :func:`run_argv`: an argument list, never a shell string; its own
session, so a timeout kills the whole process group (a hook's children
included) and nothing keeps the output pipe open after it; stdout and
stderr merged, the last lines kept for the report.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

TAIL_LINES = 20


@dataclass(frozen=True, slots=True)
class Finished:
    """How a program run by :func:`run_argv` ended, with the last lines it wrote."""

    argv: tuple[str, ...]
    returncode: int | None  #: None when it timed out (and was killed)
    output: str  #: the last lines of stdout and stderr together
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def last_line(self) -> str:
        lines = [line for line in self.output.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    def describe(self, timeout: float) -> str:
        """``/bin/x exited with status 3: <last line>``, one line."""
        name = self.argv[0]
        if self.returncode is None:
            status = f"did not finish within {timeout:g}s (killed)"
        elif self.returncode < 0:
            status = f"was killed by signal {-self.returncode}"
        else:
            status = f"exited with status {self.returncode}"
        return f"{name} {status}" + (f": {self.last_line}" if self.last_line else "")


def tail(data: bytes, lines: int = TAIL_LINES) -> str:
    text = data.decode("utf-8", "replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def resolve(program: str) -> str | None:
    """The executable an argument list names (a path, or a name on PATH)."""
    if "/" in program:
        return program if os.access(program, os.X_OK) and Path(program).is_file() else None
    return shutil.which(program)


def run_argv(
    argv: list[str],
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    tail_lines: int = TAIL_LINES,
) -> Finished:
    """Run ``argv``; kill its process group after ``timeout``. OSError if it cannot start."""
    if isinstance(argv, str):  # a type checker catches this; a YAML file does not
        raise TypeError("run_argv takes an argument list, not a string")
    started = time.monotonic()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
        close_fds=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
        returncode: int | None = process.returncode
    except subprocess.TimeoutExpired:
        _kill_group(process)
        try:
            output, _ = process.communicate(timeout=5.0)
        except subprocess.TimeoutExpired:
            output = b""
        returncode = None
    except BaseException:
        _kill_group(process)
        process.wait()
        raise
    return Finished(tuple(argv), returncode, tail(output, tail_lines), time.monotonic() - started)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(ProcessLookupError):
        process.kill()
