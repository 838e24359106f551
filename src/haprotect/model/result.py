"""How a backup or restore run ended, item by item.

Terms:

status
    ``completed``: every item succeeded fully. ``partially_failed``: some
    items, or some files of an item, failed; the rest is usable. ``failed``:
    nothing could be backed up (or restored).
item status
    ``ok``; ``partial`` (copied, but some files could not be read or
    written); ``failed``; ``skipped`` (not attempted, e.g. a tier whose
    dependency failed to restore).
issue
    A problem recorded against a scope (``run``, a set, ``cluster/dataset``),
    with a severity: a ``warning`` leaves the status alone, an ``error``
    belongs to a failed or partial item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from haprotect.errors import ExitCode
from haprotect.model.snapshot import FileError, JSONValue


class Status(StrEnum):
    """How a run ended; each status has its exit code (:attr:`exit_code`)."""

    COMPLETED = "completed"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"

    @property
    def exit_code(self) -> ExitCode:
        """0 completed, 10 partially failed, 11 failed (errors.py lists every code)."""
        return {
            "completed": ExitCode.SUCCESS,
            "partially_failed": ExitCode.PARTIALLY_FAILED,
            "failed": ExitCode.FAILED,
        }[self.value]


class ItemStatus(StrEnum):
    """How one item ended (see the module's terms)."""

    OK = "ok"
    PARTIAL = "partial"
    FAILED = "failed"
    SKIPPED = "skipped"


class Severity(StrEnum):
    """A warning leaves a run's status as it is; an error outside the items makes it partial."""

    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class IssueRecord:
    """A warning or error a run recorded, with the item or set (``scope``) it concerns."""

    scope: str
    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One item of a run. ``scope`` is ``cluster/dataset``."""

    scope: str
    set_id: str
    tier: str
    dataset: str
    status: ItemStatus
    message: str
    snapshot_id: str | None = None
    node: str | None = None
    started: datetime | None = None
    finished: datetime | None = None
    details: Mapping[str, JSONValue] = field(default_factory=dict)
    errors: tuple[FileError, ...] = ()


@dataclass(frozen=True, slots=True)
class Result:
    """How one backup or restore run ended: its status, each item, every issue."""

    operation: str  #: ``backup`` or ``restore``
    status: Status
    items: tuple[ItemResult, ...]
    issues: tuple[IssueRecord, ...]
    started: datetime
    finished: datetime
    sets: tuple[str, ...] = ()

    @property
    def failed(self) -> tuple[ItemResult, ...]:
        """Items that did not fully succeed."""
        return tuple(i for i in self.items if i.status is not ItemStatus.OK)
