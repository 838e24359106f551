"""Making SIGTERM run ``finally`` blocks: the command line's business, never a library's.

Python ends a process on SIGTERM without unwinding, so :func:`held`'s
``finally`` (the resumes) would not run. The CLI (and only it: library
code never installs signal handlers) wraps a backup run in
:func:`sigterm_raises`, which turns SIGTERM and SIGHUP into
:class:`Terminated` (a ``SystemExit``) in the main thread while the block
runs; :func:`held` resumes every tier and the exception ends the process
with status 128 + the signal. Outside the main thread it does nothing.
"""

from __future__ import annotations

import signal
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
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
