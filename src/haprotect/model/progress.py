"""Progress of a long repository operation, reported to an optional callback.

``files_total`` and ``bytes_total`` are ``None`` while they are not known yet
(a backup counts its input in the background while it works). For ``check``
and ``prune`` the "files" are packs and ``current`` names the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    """Which repository operation a progress event is about."""

    BACKUP = "backup"
    RESTORE = "restore"
    CHECK = "check"
    PRUNE = "prune"
    REPAIR = "repair"
    COPY = "copy"


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """How far a long repository operation has got (see the module docstring)."""

    phase: Phase
    files_done: int
    bytes_done: int
    files_total: int | None = None
    bytes_total: int | None = None
    current: str | None = None
    finished: bool = False
