"""Forking a helper process that never returns into its parent's code.

Restores and backups fork helpers to use every core (Python's global lock
keeps one process to about one). A helper is forked while other threads
run (the lock's heartbeat, a backup's walk and workers, whatever threads an
embedding program has): only the forking thread goes on in the child, so a
helper's code must use none of the locks the others might hold at that
moment. SIGINT and SIGTERM are blocked around the fork, so that a signal
never runs a parent's handler in the child; the child gets the parent's
mask back once it is inside its own code, is killed when the parent ends,
however it ends (``PR_SET_PDEATHSIG``), and leaves with ``os._exit``. If the
parent is interrupted once the child exists but before it has its pid (a
KeyboardInterrupt raised as the mask is restored), the child is killed and
reaped, not left behind.

Linux only: elsewhere a child would not die with its parent, and forking a
process with threads is not safe on every system.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Protocol

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_PR_SET_PDEATHSIG = 1


class Forker(Protocol):
    """What forks a helper: :func:`fork_helper`, or a test's fake with its signature."""

    def __call__(
        self,
        body: Callable[[], int],
        *,
        close_in_child: Iterable[int] = (),
        keep_in_child: Iterable[int] | None = None,
    ) -> int: ...


def can_fork() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def _fork() -> int:
    if sys.version_info < (3, 12):
        return os.fork()
    with warnings.catch_warnings():
        # 3.12 warns about forking with threads: only the forking thread goes on
        # in the child, which uses none of the locks the others may hold
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def fork_helper(
    body: Callable[[], int],
    *,
    close_in_child: Iterable[int] = (),
    keep_in_child: Iterable[int] | None = None,
    fork: Callable[[], int] = _fork,
    set_mask: Callable[[int, Iterable[int]], set[int | signal.Signals]] = signal.pthread_sigmask,
) -> int:
    """Fork a process that runs ``body`` and exits with its code; return its pid.

    ``close_in_child``: the parent's descriptors the helper must not keep
    (its peers' pipe ends, so that closing them is seen as an end). With
    ``keep_in_child``, the helper keeps only those and the standard streams:
    nothing of an embedding program (sockets, other helpers' pipes, a lease
    keeper's pipe) stays open because a helper lives. ``fork`` and ``set_mask``
    (the parent's masking around the fork) are the system's unless a test
    gives its own.
    """
    parent = os.getpid()
    close = list(close_in_child)
    keep = None if keep_in_child is None else sorted(set(keep_in_child))
    pid = 0
    mask = set_mask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        try:
            pid = fork()
            if pid == 0:
                _helper_main(body, parent, close, keep, mask)
        finally:
            set_mask(signal.SIG_SETMASK, mask)
    except BaseException:
        if pid:
            end_helper(pid)
        raise
    return pid


def end_helper(pid: int) -> None:
    """Kill a helper and reap it (a helper whose parent gave up on it)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _helper_main(
    body: Callable[[], int],
    parent: int,
    close: list[int],
    keep: list[int] | None,
    mask: set[int | signal.Signals],
) -> None:
    code = 1
    try:
        die_with_parent(parent)
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        if keep is not None:
            _close_all_but(keep)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        code = body()
    finally:
        os._exit(code)


def _close_all_but(keep: list[int]) -> None:
    low = 3
    for fd in keep:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def die_with_parent(parent: int) -> None:
    """Be killed when ``parent`` ends, however it ends (Linux); leave if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
