"""The mover contract: copy one kind of data into the repository and back out.

A mover is a small plug-in: a ``name``, ``applies_to(kind)`` for the data
set kinds it copies, and its actions, which are one pair and a check:

- ``probe(item, node, inventory)``: can ``node`` be read now, and how far
  behind is it (replication lag)? The plan's source choice uses it.
- ``backup(job)``: copy the data from ``job.node`` into ``job.repo`` as one
  snapshot, with the metadata the engine prepared plus the mover's own
  details (``job.metadata(...)``).
- ``restore(job)``: put a snapshot's data at ``job.target`` and check that
  it is healthy (a database starts and answers; a tree is complete).
- ``prepare_cut(request)``: called while the set's tiers are held, make the
  item's data point-in-time and return a :class:`~haprotect.movers.cut.CutHandle`
  the copy reads from and releases after (or None: copied after resume).
  ``cut_needs_source(item)`` asks for the copy's source to be chosen before
  the hold, for a cut that pauses it; ``quiescer_options(...)`` gives the
  tier's quiescers defaults taken from the item (a database's DSN).

These three have defaults (nothing to cut, no source, no options), which a
mover gets by subclassing :class:`Mover`.

Long work reports progress through ``job.progress`` (the repository's
progress events), notes through ``job.note``, and stops early when
``job.cancel`` is set. A mover raises a :class:`~haprotect.errors.HaprotectError`
for a failure of its item; the engine records it and goes on with the rest.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.model.plan import PlanItem, SetItem, SourceChoice, SourceHealth
from haprotect.model.progress import ProgressEvent
from haprotect.model.snapshot import FileError, JSONValue, Snapshot
from haprotect.movers.cut import CutHandle, CutRequest
from haprotect.repo import Repository

ProgressSink = Callable[[ProgressEvent], None]
NoteSink = Callable[[str], None]
MetadataFactory = Callable[[str | None, Mapping[str, JSONValue]], dict[str, JSONValue]]


def _ignore(_: str) -> None:
    return None


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class BackupJob:
    """One item to copy from ``node``; ``staging`` is a fresh directory of the mover's own.

    ``paused_at``: the source stands still at this position (a standby whose
    replay was paused at the cut), so the mover must not wait for it to catch
    up; ``release_source`` is called by the mover as soon as it has read what
    it needs from the source (the standby then resumes replay). The engine
    calls it again afterwards; it does its work once.

    ``record_as``: the path the snapshot records its data under, whatever
    directory (a staging or cut directory) it was read from, so that every
    backup of the data set has the same paths (pass it on to
    ``repo.backup``); ``None``: where it was read.
    """

    repo: Repository
    item: PlanItem
    node: str
    access: NodeAccess
    location: Mapping[str, str]
    source: SourceChoice
    inventory: Inventory
    tags: tuple[str, ...]
    staging: Path
    make_metadata: MetadataFactory
    progress: ProgressSink | None = None
    note: NoteSink = _ignore
    cancel: threading.Event = field(default_factory=threading.Event)
    paused_at: str | None = None
    release_source: Callable[[], None] = _nothing
    record_as: str | None = None

    def metadata(
        self, path_key: str | None, details: Mapping[str, JSONValue] | None = None
    ) -> dict[str, JSONValue]:
        """The snapshot metadata: the engine's, with ``path_key`` and the mover's details.

        ``path_key`` names the location parameter that is the data's path on
        a node (``directory``, ``pgdata``, ``device``), for a later restore to
        the original place.
        """
        return self.make_metadata(path_key, details or {})


#: how the repository reports a file that disappeared between the walk and the read
VANISHED = os.strerror(errno.ENOENT)


def vanished(error: FileError) -> bool:
    """A file deleted (or renamed) while the backup ran: gone, not unreadable.

    Live data has such files (an upload's temporary name, renamed when it is
    complete); they are noted, and do not make the item partial.
    """
    return error.message == VANISHED


@dataclass(frozen=True, slots=True)
class BackupOutcome:
    """What a backup made of an item: its snapshot, a message, details for the item's result."""

    snapshot: Snapshot
    message: str
    details: Mapping[str, JSONValue] = field(default_factory=dict)

    @property
    def errors(self) -> tuple[FileError, ...]:
        """Files the copy could not read: the item is only partly backed up."""
        return tuple(e for e in self.snapshot.errors if not vanished(e))

    @property
    def vanished(self) -> tuple[FileError, ...]:
        return tuple(e for e in self.snapshot.errors if vanished(e))


@dataclass(frozen=True, slots=True)
class RestoreJob:
    """Put snapshot ``item.snapshot_id`` at ``target``, then check it is healthy.

    ``overwrite`` allows replacing what is at ``target``; ``in_place`` says
    the target is the data's original place; ``keep_running`` leaves a
    server started for the health check running.
    """

    repo: Repository
    item: SetItem
    target: Path
    in_place: bool
    overwrite: bool
    keep_running: bool
    progress: ProgressSink | None = None
    note: NoteSink = _ignore
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True, slots=True)
class RestoreOutcome:
    """What a restore made of an item.

    ``errors`` names the files that are not at their place complete;
    ``nothing_restored`` says that none of the item's files is (every one of
    them is among the errors): the item failed, rather than partly.
    """

    message: str  #: what the health check found
    details: Mapping[str, JSONValue] = field(default_factory=dict)
    errors: tuple[FileError, ...] = ()
    nothing_restored: bool = False


class Mover(Protocol):
    """The contract every mover meets (see the module docstring), built-in or plug-in."""

    @property
    def name(self) -> str: ...

    def applies_to(self, kind: str) -> bool:
        """True when this mover copies data sets of ``kind`` (``postgresql``, ``filesystem``)."""
        ...

    def probe(self, item: PlanItem, node: str, inventory: Inventory) -> SourceHealth:
        """Whether ``node`` can be read for ``item`` now, and its replication lag."""
        ...

    def backup(self, job: BackupJob) -> BackupOutcome: ...

    def restore(self, job: RestoreJob) -> RestoreOutcome: ...

    def cut_needs_source(self, item: PlanItem) -> bool:
        """Whether the cut of ``item`` needs its copy's source chosen before the hold."""
        return False

    def prepare_cut(self, request: CutRequest) -> CutHandle | None:
        """Make the item point-in-time while its tiers are held; None: nothing to cut."""
        return None

    def quiescer_options(
        self, item: PlanItem, inventory: Inventory, quiescer: str
    ) -> Mapping[str, str]:
        """Options a ``quiescer`` of the item's tier gets unless the policy sets them."""
        return {}


def size_text(nbytes: int) -> str:
    """``1.5 MiB``: a byte count for messages."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} B"
