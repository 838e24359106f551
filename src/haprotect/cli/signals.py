"""Making SIGTERM run ``finally`` blocks: the command line's business, never a library's.

Python ends a process on SIGTERM without unwinding, so :func:`held`'s
``finally`` (the resumes) would not run. The CLI (and only it: library
code never installs signal handlers) wraps a backup run in
:func:`sigterm_raises`, which turns SIGTERM and SIGHUP into
:class:`Terminated` (a ``SystemExit``) in the main thread while the block
runs; :func:`held` resumes every tier and the exception ends the process
with status 128 + the signal. Outside the main thread it does nothing.

A run started by the protection service names its parent in
``HAPROTECT_PARENT_PID``: the kernel then sends it SIGTERM when that parent
dies (``PR_SET_PDEATHSIG``), so a service killed with -9 leaves no run
holding tiers past its unwinding.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(SystemExit):
    """The process was asked to stop by a signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


@contextmanager
def sigterm_raises(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        _die_with_parent()
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


#: From linux/prctl.h: deliver a signal to this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask for SIGTERM when the parent named in the environment dies (Linux only)."""
    from haprotect.service.child import PARENT_PID_VARIABLE

    expected = os.environ.get(PARENT_PID_VARIABLE)
    if not expected or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    # The parent may have died before the request: then no signal will come.
    if str(os.getppid()) != expected:
        raise Terminated(signal.SIGTERM)
