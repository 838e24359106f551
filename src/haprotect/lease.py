"""A lease on a held tier that outlives its holder: a detached keeper process.

Shared by the quiescers and the movers whose cut holds something (a
standby's paused replay). Before a quiescer holds a tier it starts a :class:`Lease` with the command
that releases the tier (``fsfreeze --unfreeze /mnt``, restoring a Pacemaker
attribute, a post hook). The keeper (:mod:`haprotect.lease_keeper`)
runs in its own session and runs that command when the lease ends, or at
once when its holder dies (its control pipe reaches end of file, which
kill -9 of the holder causes too). When the holder resumes the tier itself
it calls :meth:`Lease.cancel`, which says whether the keeper had already
released the tier (the lease ran out before resume: the cut may not be
consistent, and the caller reports it).
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from haprotect.errors import QuiesceError

log = logging.getLogger(__name__)

KEEPER = Path(__file__).with_name("lease_keeper.py")
_START_TIMEOUT = 10.0


class Lease:
    """The holder's end of a running keeper."""

    def __init__(self, process: subprocess.Popen[bytes], what: str, seconds: float) -> None:
        self._process = process
        self.what = what
        self.seconds = seconds
        self.started_at = time.time()
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    def start(
        cls,
        release: list[str],
        seconds: float,
        *,
        what: str,
        env: Mapping[str, str] | None = None,
        cwd: str = "/",
        log_file: Path | None = None,
    ) -> Lease:
        """Start a keeper that runs ``release`` after ``seconds`` unless cancelled."""
        argv = [sys.executable, "-I", "-B", str(KEEPER), f"{seconds:.3f}"]
        if log_file is not None:
            argv += ["--log", str(log_file)]
        argv += ["--", *release]
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise QuiesceError(f"{what}: cannot start the lease keeper: {exc}") from None
        lease = cls(process, what, seconds)
        answer = lease._read_line(_START_TIMEOUT)
        if answer != "ready":
            lease._kill()
            raise QuiesceError(f"{what}: the lease keeper did not start ({answer or 'no answer'})")
        log.debug("%s: lease keeper %d holds a %gs lease", what, process.pid, seconds)
        return lease

    def renew(self, seconds: float) -> None:
        self._send(f"renew {seconds:.3f}")
        answer = self._read_line(5.0)
        if answer != "renewed":
            raise QuiesceError(f"{self.what}: the lease could not be renewed ({answer or 'gone'})")
        self.seconds = seconds

    def cancel(self, timeout: float = 5.0) -> str | None:
        """Stop the keeper. None if it was still waiting; else what it did (``released ...``)."""
        already = self._released_line()
        if already is None:
            self._send("cancel")
            answer = self._read_line(timeout)
            if answer is not None and answer.startswith("released"):
                already = answer
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
        self._close()
        return already

    def release_now(self, timeout: float = 30.0) -> str | None:
        """Have the keeper run the release now (as if the holder died); what it said."""
        stdin = self._process.stdin
        if stdin is not None:
            with suppress(OSError):
                stdin.close()
        answer = self._read_line(timeout)
        while answer is not None and not answer.startswith("released"):
            answer = self._read_line(timeout)
        with suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout)
        self._close()
        return answer

    def released(self) -> str | None:
        """What the keeper said if it already released the tier (lease ended, say); else None.

        When it did, the keeper has exited and this lease is spent.
        """
        line = self._released_line()
        if line is not None:
            with suppress(subprocess.TimeoutExpired):
                self._process.wait(5.0)
            self._close()
        return line

    def _released_line(self) -> str | None:
        """A ``released ...`` line the keeper already wrote, without waiting."""
        while True:
            line = self._read_line(0.0)
            if line is None:
                return None
            if line.startswith("released"):
                return line

    def _send(self, line: str) -> None:
        stdin = self._process.stdin
        if stdin is None:
            return
        with suppress(OSError, ValueError):
            stdin.write(line.encode() + b"\n")
            stdin.flush()

    def _read_line(self, timeout: float) -> str | None:
        stdout = self._process.stdout
        if stdout is None:
            return None
        deadline = time.monotonic() + timeout
        fd = stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            self._buffer += chunk
        if b"\n" not in self._buffer:
            line, self._buffer = self._buffer, b""
        else:
            raw, _, self._buffer = self._buffer.partition(b"\n")
            line = raw
        text = line.decode("utf-8", "replace").strip()
        return text or None

    def _kill(self) -> None:
        with suppress(ProcessLookupError):
            self._process.kill()
        with suppress(subprocess.TimeoutExpired):
            self._process.wait(5.0)
        self._close()

    def _close(self) -> None:
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                with suppress(OSError):
                    pipe.close()
