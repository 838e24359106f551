"""Background processes of the lab: start detached, find by pid file, stop for sure.

A lab process runs in its own session with its output in a log file, so it
outlives the command that started it. Its pid file names it; a pid only
counts as running when the process exists, is not a zombie (a machine whose
init does not reap orphans keeps those around) and its command line still
mentions the lab, so a recycled pid is never taken for a lab process.
Stopping sends SIGTERM, waits, then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path

#: Children started by this Python process, so that they can be reaped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    argv: list[str], *, pid_file: Path, log_file: Path, cwd: Path, env: dict[str, str]
) -> int:
    """Start ``argv`` detached, with output appended to ``log_file``; return its pid."""
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[process.pid] = process
    pid_file.write_text(f"{process.pid}\n")
    return process.pid


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int, marker: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, given a marker, mentions it in its command line."""
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself hold spaces.
    if stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"]):
        return False
    if marker is None:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return marker.encode() in cmdline


def running_pid(pid_file: Path, marker: str | None = None) -> int | None:
    pid = read_pid(pid_file)
    return pid if pid is not None and alive(pid, marker) else None


def terminate(pid: int, *, grace: float = 10.0, first: signal.Signals = signal.SIGTERM) -> None:
    """Send ``first``, wait up to ``grace`` seconds, then SIGKILL; return once it is gone."""
    with suppress(ProcessLookupError):
        os.kill(pid, first)
    if _wait_gone(pid, grace):
        return
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 5.0)


def stop(pid_file: Path, marker: str | None = None, *, grace: float = 10.0) -> bool:
    """Stop the process a pid file names; True if one was running."""
    pid = running_pid(pid_file, marker)
    if pid is not None:
        terminate(pid, grace=grace)
    pid_file.unlink(missing_ok=True)
    return pid is not None


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def _reap(pid: int) -> None:
    process = _CHILDREN.get(pid)
    if process is not None and process.poll() is not None:
        del _CHILDREN[pid]
