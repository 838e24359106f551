"""Forking a helper process that never returns into its parent's code.

Restores and backups fork helpers to use every core (Python's global lock
keeps one process to about one). A helper is forked while other threads
run (the lock's heartbeat, a backup's walk and workers, whatever threads an
embedding program has): only the forking thread goes on in the child, so a
helper's code must use none of the locks the others might hold at that
moment. SIGINT and SIGTERM are blocked around the fork, so that a signal
never runs a parent's handler in the child; the child gets the parent's
mask back once it is inside its own code, is killed when the parent ends,
however it ends (``PR_SET_PDEATHSIG``), and leaves with ``os._exit``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import warnings
from collections.abc import Callable, Iterable

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_PR_SET_PDEATHSIG = 1


def can_fork() -> bool:
    return hasattr(os, "fork")


def fork_helper(body: Callable[[], int], *, close_in_child: Iterable[int] = ()) -> int:
    """Fork a process that runs ``body`` and exits with its code; return its pid.

    ``close_in_child``: the parent's descriptors the helper must not keep
    (its peers' pipe ends, so that closing them is seen as an end).
    """
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        with warnings.catch_warnings():
            # only the forking thread goes on in the child (see the module's docstring)
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            _helper_main(body, close_in_child, mask)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return pid


def _helper_main(
    body: Callable[[], int], close: Iterable[int], mask: set[int | signal.Signals]
) -> None:
    code = 1
    try:
        die_with_parent()
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        code = body()
    finally:
        os._exit(code)


def die_with_parent() -> None:
    """Be killed when the parent ends, however it ends (Linux); leave if it already has."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
