"""What a backup's pipeline is made of beside its options.

The system's calls and the repository's own classes by default; a caller
that wants to watch or fail a step (a test) gives its own in their place,
to :func:`~haprotect.repo.backup.run.run_backup`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from haprotect.repo.backup.fileworker import SmallFileReader
from haprotect.repo.backup.walker import SYSTEM_FILES, SourceFiles
from haprotect.repo.blobs.blobsink import BlobSink
from haprotect.repo.format.config import RepoConfig
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import Index
from haprotect.repo.process.forkpool import ForkPool, Handler

ReaderMaker = Callable[[RepoConfig, MasterKey, Index, int, SourceFiles], Handler]
"""Makes a reading process's handler: config, key, index, buffer size, how files are read."""


@dataclass(frozen=True, slots=True)
class BackupParts:
    """The calls and classes one backup uses; each is the production one unless given."""

    files: SourceFiles = SYSTEM_FILES
    """How the walk, the worker threads and the reading processes read the files."""
    readers: Callable[[Callable[[], Handler], int, int], ForkPool] = ForkPool
    """Makes the pool of reading processes (make_handler, buffer size, processes)."""
    reader: ReaderMaker = SmallFileReader
    """Makes the handler of each reading process."""
    sink: Callable[..., BlobSink] = BlobSink
    """Makes the sink that packs the backup's chunks (with BlobSink's arguments)."""
