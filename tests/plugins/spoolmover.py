"""A third-party mover for a kind haprotect does not know (``spool``), installed as a plug-in.

Its cut copies the spool directory while the tiers are held; every step is
written to the ``journal`` file its location names, so a test can see when
it ran against the quiescers' holds and resumes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from haprotect.model.inventory import Inventory
from haprotect.model.plan import PlanItem, SourceHealth
from haprotect.movers import (
    BackupJob,
    BackupOutcome,
    CutHandle,
    CutRequest,
    Mover,
    RestoreJob,
    RestoreOutcome,
)


def journal(path: str, line: str) -> None:
    with open(path, "a") as out:
        out.write(line + "\n")


@dataclass(eq=False)
class SpoolCut(CutHandle):
    journal: str = ""
    let_go: bool = False

    @property
    def released(self) -> bool:
        return self.let_go

    def release(self) -> str | None:
        journal(self.journal, "release")
        self.let_go = True
        return None


class SpoolMover(Mover):
    name = "spool"

    def applies_to(self, kind: str) -> bool:
        return kind == "spool"

    def probe(self, item: PlanItem, node: str, inventory: Inventory) -> SourceHealth:
        return SourceHealth(node, True, "a local spool")

    def prepare_cut(self, request: CutRequest) -> SpoolCut:
        item = request.item
        location = request.inventory.location(
            item.source.node or "", item.cluster, item.dataset, item.cluster_location
        )
        copy = request.root / "spool-cut"
        shutil.copytree(location["spool"], copy)
        journal(location["journal"], "prepare_cut")
        return SpoolCut(
            details={"cut": "spool copy"},
            replaces={"spool": str(copy)},
            journal=location["journal"],
        )

    def backup(self, job: BackupJob) -> BackupOutcome:
        spool = Path(job.location["spool"])
        journal(job.location["journal"], f"backup {(spool / 'queue').read_text().strip()}")
        snapshot = job.repo.backup(
            [spool],
            tags=job.tags,
            metadata=job.metadata("spool", {"messages": 1}),
            record_as=job.record_as,
        )
        return BackupOutcome(snapshot, "spool copied")

    def restore(self, job: RestoreJob) -> RestoreOutcome:
        raise NotImplementedError("not needed by the test")


def factory() -> SpoolMover:
    return SpoolMover()
