"""What a restore is asked to do, and how several processes share one.

See :mod:`haprotect.repo.restore.processes` for the processes and
:mod:`haprotect.repo.restore.restorer` for what each of them does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from haprotect.model.snapshot import RestoreStats
from haprotect.repo.format.config import MiB
from haprotect.repo.progress import ProgressMeter


@dataclass(frozen=True, slots=True)
class RestoreOptions:
    """How a restore runs, and what metadata (owners, extended attributes) it restores."""

    workers: int = 4
    sparse: bool = True
    owners: bool | None = None
    xattrs: bool = True
    max_read: int = 8 * MiB
    direct_io: bool = True
    processes: int = 0
    """Processes sharing the work (:mod:`.processes`); 0: a core each, up to 4."""
    segment: int = 64 * MiB
    """The processes take turns by segments of this many bytes of file data."""


@dataclass(frozen=True, slots=True)
class Share:
    """One process's share of a restore: process ``index`` of ``count`` restoring one snapshot.

    The regular files, in tree order, fall into segments of ``segment``
    bytes of data (a file in the segment where it starts); this process
    writes those of segments ``index``, ``index + count``, ... Process 0,
    the primary, also makes directories and special files, links every
    later name of a hard-linked file once the others are done, and sets the
    directories' metadata last.
    """

    index: int
    count: int
    segment: int

    @property
    def primary(self) -> bool:
        return self.index == 0

    def owns(self, position: int) -> bool:
        return position // self.segment % self.count == self.index


class Team(Protocol):
    """The processes of one restore, as one of them sees them."""

    def publish(self, files: int, nbytes: int) -> None:
        """Make this process's counts of restored files and bytes known to the others."""

    def totals(self) -> tuple[int, int]:
        """The files and bytes restored by all processes so far."""

    def join(self, meter: ProgressMeter) -> RestoreStats:
        """Primary: wait for the others (reporting progress); what they restored."""

    def stop(self) -> None:
        """Primary: end the others at once (the restore failed or was interrupted)."""
