"""A shorter thread switch interval while a backup's pipeline runs.

The pipeline's threads (the walk, the caller's, the readers) release
Python's global lock around every system call and every hashing,
compressing or encrypting step, and ask for it back right after. A thread
that asks waits until the holder releases it or until the switch interval
ends (5 ms by default). With thousands of small files, each a handful of
short system calls, the readers spend much of that time waiting: 1 ms made
the initial backup of the benchmark tree about 4 % faster
(docs/benchmarks.md), with nothing lost elsewhere.

The interval belongs to the whole process, so it is lowered by the first
backup that runs and restored by the last one to end, whatever their order.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PIPELINE_SWITCH_INTERVAL = 0.001


class _Users:
    """How many pipelines run, and the interval from before the first one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.saved = 0.0


_users = _Users()


@contextmanager
def short_switch_interval() -> Iterator[None]:
    """Run the body with the switch interval at most :data:`PIPELINE_SWITCH_INTERVAL`."""
    with _users.lock:
        if _users.count == 0:
            _users.saved = sys.getswitchinterval()
        _users.count += 1
        sys.setswitchinterval(min(PIPELINE_SWITCH_INTERVAL, _users.saved))
    try:
        yield
    finally:
        with _users.lock:
            _users.count -= 1
            if _users.count == 0:
                sys.setswitchinterval(_users.saved)
