"""The engine: runs a plan, never prints, always says how it ended.

Terms:

run
    One backup (:func:`run_backup`) or restore (:func:`run_restore`). It
    emits typed events (:mod:`haprotect.engine.events`) to a ``Reporter``
    and returns a :class:`~haprotect.model.result.Result`: Completed,
    PartiallyFailed or Failed, with the issues recorded per scope.
snapshot set
    What backing up one application leaves in the repository: one snapshot
    per tier and data set and one of the topology, sharing a set id, each
    describing the whole set in its metadata (:mod:`haprotect.engine.sets`,
    docs/engine.md). :func:`list_sets` rebuilds them from the repository
    alone.
cut
    The point in time a set is consistent at: taken while the set's tiers
    are held by their quiescers (a copy of a directory, the primary's WAL
    position), copied from after they resume
    (:mod:`haprotect.engine.quiescing`).
"""

from __future__ import annotations

from haprotect.engine.backup import RunOptions, run_backup
from haprotect.engine.events import Event, ListReporter, NullReporter, Reporter, event_to_json
from haprotect.engine.restore import run_restore
from haprotect.engine.result import result_to_json
from haprotect.engine.sets import find_set, read_sets
from haprotect.model.plan import SnapshotSet
from haprotect.repo import Repository


def list_sets(repo: Repository) -> list[SnapshotSet]:
    """Every snapshot set in ``repo``, oldest first."""
    return read_sets(repo.snapshots())


__all__ = [
    "Event",
    "ListReporter",
    "NullReporter",
    "Reporter",
    "RunOptions",
    "event_to_json",
    "find_set",
    "list_sets",
    "read_sets",
    "result_to_json",
    "run_backup",
    "run_restore",
]
