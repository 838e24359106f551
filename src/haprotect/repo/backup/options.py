"""How a backup runs: its threads, buffers, reading processes, what it records."""

from __future__ import annotations

import os
from dataclasses import dataclass

from haprotect.repo.format.config import MiB
from haprotect.repo.process.forking import can_fork

MAX_READERS = 4
READERS_AFTER_BATCHES = 4
"""Batches of small files a backup hands out before it forks its reading processes:
one that reads only a few (most incremental backups) does not fork."""


@dataclass(frozen=True, slots=True)
class BackupOptions:
    """How one backup runs; the defaults suit most machines."""

    workers: int = max(2, os.cpu_count() or 2)
    """Threads that read, cut, compress, encrypt and pack files."""
    upload_threads: int = 4
    """Threads that store finished packs."""
    buffer_size: int = 0
    """Bytes of each read buffer (at least the largest chunk and the smallest: the default)."""
    buffers: int = 0
    """Read buffers (0: one more than the workers); they bound the backup's memory."""
    small_file: int = 1 * MiB
    """Files up to this size are read in batches (and by the reading processes)."""
    xattrs: bool = True
    """Record extended attributes."""
    one_file_system: bool = False
    """Do not descend into directories on other file systems."""
    readers: int | None = None
    """Processes that read batches of small files beside the threads
    (:class:`~haprotect.repo.backup.fileworker.SmallFileReader`): None for one per
    core (up to 4) where the system can fork and has two cores, 0 for none."""
    readers_after_batches: int = READERS_AFTER_BATCHES
    """Batches of small files handed out before the reading processes are forked."""

    def reader_count(self) -> int:
        if not can_fork():
            return 0
        if self.readers is not None:
            return max(0, self.readers)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        return min(MAX_READERS, cores) if cores >= 2 else 0
