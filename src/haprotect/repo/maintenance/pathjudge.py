"""Judging a tree's paths as a restore would, for ``check``.

A restore refuses a tree at its first path that could escape the target
(absolute, an empty, ``.`` or ``..`` component, a NUL) or that is not
strictly after the path before it (a duplicate, or out of order):
:func:`~haprotect.repo.restore.target.next_components`. A check judges every
snapshot's paths with that same function, so it passes exactly the trees
a restore accepts.

Check reads each tree chunk once however many snapshots share it
(:mod:`haprotect.repo.maintenance.reachable`), so the paths wholly inside a chunk are
judged once, among themselves, into a :class:`Summary`; in each snapshot
only the chunk's first inner path is judged against the path before it,
and the summary's finding (if any) is raised again under that snapshot's
id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from haprotect.repo.errors import IntegrityError, RestoreError
from haprotect.repo.restore.target import Components, components, next_components


@dataclass(frozen=True, slots=True)
class Summary:
    """The inner paths of one tree chunk: the first, the last one's components, the
    first path refused among them (with the components before it)."""

    first: str
    last: Components | None
    refused: tuple[str, Components | None] | None


@dataclass(slots=True)
class Refusals:
    """The paths a restore would refuse in one snapshot: how many, and the first one's
    message."""

    count: int = 0
    first: str = ""


@dataclass(slots=True)
class PathJudge:
    """Judges the paths of one snapshot after another, in tree order."""

    snapshot_id: str = ""
    refused: dict[str, Refusals] = field(default_factory=dict)
    _previous: Components | None = None

    def start(self, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        self._previous = None

    def path(self, path: str) -> None:
        """Judge the next path of the snapshot."""
        self._previous = self._judge(path, self._previous)

    def summarize(self, paths: Iterable[str]) -> Summary | None:
        """Judge the inner paths of a chunk among themselves (see the module docstring)."""
        first: str | None = None
        previous: Components | None = None
        refused: tuple[str, Components | None] | None = None
        for path in paths:
            if first is None:
                first = path
                previous = _parts(path)
                continue
            try:
                previous = next_components(path, "", previous)
            except (RestoreError, IntegrityError):
                refused = refused or (path, previous)
                previous = _parts(path) or previous
        return None if first is None else Summary(first, previous, refused)

    def apply(self, summary: Summary) -> None:
        """Judge a chunk's inner paths in this snapshot, from their summary."""
        self.path(summary.first)
        if summary.refused is not None:
            self._judge(*summary.refused)
        if summary.last is not None:
            self._previous = summary.last

    def _judge(self, path: str, previous: Components | None) -> Components | None:
        try:
            return next_components(path, self.snapshot_id, previous)
        except (RestoreError, IntegrityError) as exc:
            found = self.refused.setdefault(self.snapshot_id, Refusals())
            found.count += 1
            found.first = found.first or str(exc)
            return _parts(path) or previous


def _parts(path: str) -> Components | None:
    try:
        return components(path, "")
    except RestoreError:
        return None
