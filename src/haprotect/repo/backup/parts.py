"""What a backup's pipeline is made of beside its options.

The system's calls and the repository's own classes by default; a caller
that wants to watch or fail a step (a test) gives its own in their place,
to :func:`~haprotect.repo.backup.run.run_backup`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from haprotect.repo.backup.filereader import open_for_reading
from haprotect.repo.backup.fileworker import SmallFileReader
from haprotect.repo.blobs.blobsink import BlobSink
from haprotect.repo.format.config import RepoConfig
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import Index
from haprotect.repo.process.forkpool import ForkPool, Handler

Opener = Callable[[bytes], int]
ReaderMaker = Callable[[RepoConfig, MasterKey, Index, int, Opener], Handler]
"""Makes a reading process's handler: config, key, index, buffer size, opener."""


@dataclass(frozen=True, slots=True)
class BackupParts:
    """The calls and classes one backup uses; each is the production one unless given."""

    open_file: Opener = open_for_reading
    """Opens a file to read its content (in the worker threads and the reading processes)."""
    listdir: Callable[[bytes], list[bytes]] = os.listdir
    """Lists a directory for the walk."""
    lstat: Callable[..., os.stat_result] = os.lstat
    """``lstat`` of the walk (a name with ``dir_fd``, or a path)."""
    readers: Callable[[Callable[[], Handler], int, int], ForkPool] = ForkPool
    """Makes the pool of reading processes (make_handler, buffer size, processes)."""
    reader: ReaderMaker = SmallFileReader
    """Makes the handler of each reading process."""
    sink: Callable[..., BlobSink] = BlobSink
    """Makes the sink that packs the backup's chunks (with BlobSink's arguments)."""
