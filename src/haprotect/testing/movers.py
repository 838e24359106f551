"""A fake mover for engine tests: the real files mover, failing where a test says.

Injected through the engine's ``movers`` argument (never patched in), so a
test can make one data set's copy raise (a bug, Ctrl-C, a failed disk)
while every other item goes through the real mover.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from haprotect.model.inventory import Inventory
from haprotect.model.plan import PlanItem, SourceHealth
from haprotect.movers import Mover, get_mover
from haprotect.movers.base import (
    BackupJob,
    BackupOutcome,
    RestoreJob,
    RestoreOutcome,
)
from haprotect.movers.cut import CutHandle, CutRequest


class FailingFiles(Mover):
    """The files mover, raising ``backup_fails[dataset]`` or ``restore_fails[dataset]``."""

    name = "files"

    def __init__(
        self,
        backup_fails: Mapping[str, BaseException] | None = None,
        restore_fails: Mapping[str, BaseException] | None = None,
    ) -> None:
        self.real = get_mover("files")
        self.backup_fails = dict(backup_fails or {})
        self.restore_fails = dict(restore_fails or {})

    def applies_to(self, kind: str) -> bool:
        return True

    def probe(self, item: PlanItem, node: str, inventory: Inventory) -> SourceHealth:
        return self.real.probe(item, node, inventory)

    def backup(self, job: BackupJob) -> BackupOutcome:
        failure = self.backup_fails.get(job.item.dataset)
        if failure is not None:
            raise failure
        return self.real.backup(job)

    def prepare_cut(self, request: CutRequest) -> CutHandle | None:
        return self.real.prepare_cut(request)

    def restore(self, job: RestoreJob) -> RestoreOutcome:
        failure = self.restore_fails.get(job.item.dataset)
        if failure is not None:
            raise failure
        return self.real.restore(job)


def failing_files(
    backup_fails: Mapping[str, BaseException] | None = None,
    restore_fails: Mapping[str, BaseException] | None = None,
) -> Callable[[str], Mover]:
    """What to pass as the engine's ``movers``: every name gets a :class:`FailingFiles`."""
    mover = FailingFiles(backup_fails, restore_fails)
    return lambda name: mover


__all__ = ["FailingFiles", "failing_files"]
