"""Run by test_mover_plugin: a backup of a ``spool`` data set with the plug-in mover.

argv: the work directory. The tier is held by a quiescer that writes to the
same journal as the mover, and changes the spool when it resumes.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from haprotect.engine import ListReporter, run_backup
from haprotect.engine.backup import RunOptions
from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.model.policy import TierQuiescer
from haprotect.policy import default_rules, generate
from haprotect.quiesce import HoldReport, QuiesceSpec, ResumeReport
from haprotect.repo import KdfParams, Repository
from haprotect.storage.local import LocalStore
from haprotect.testing.builders import app, cluster, shared, tier, topology
from haprotect.testing.plans import plan_with_movers


class Journaling:
    """A quiescer that journals its hold and resume, and writes to the spool at resume."""

    name = "journaling"

    def __init__(self, journal: Path, queue: Path) -> None:
        self.journal, self.queue = journal, queue

    def applies_to(self, spec: QuiesceSpec) -> bool:
        return spec.kind == self.name

    def validate(self, spec: QuiesceSpec) -> None:
        return None

    def hold(self, spec: QuiesceSpec) -> HoldReport:
        with self.journal.open("a") as out:
            out.write(f"hold {spec.tier}\n")
        return HoldReport(time.time(), {})

    def resume(self, spec: QuiesceSpec) -> ResumeReport:
        self.queue.write_text("after the cut\n")
        with self.journal.open("a") as out:
            out.write(f"resume {spec.tier}\n")
        return ResumeReport(time.time(), {})


def main(work: Path) -> None:
    spool, journal = work / "spool", work / "journal"
    location = {"spool": str(spool), "journal": str(journal)}
    topo = topology(
        cluster(
            "c1",
            datasets=(shared("mail", kind="spool", location=location),),
            applications=(app("mailer", tier("queue", ["mail"])),),
        )
    )
    now = datetime.now(UTC)
    policy = generate(topo, default_rules(), source="file:///t.yaml", now=now)
    held = (TierQuiescer("journaling"),)
    groups = tuple(
        replace(g, tiers=tuple(replace(t, quiesce=held) for t in g.tiers)) for g in policy.groups
    )
    policy = replace(policy, groups=groups)
    inventory = Inventory((NodeAccess("node1", "127.0.0.1", True),), this_host="backup-host")
    plan = plan_with_movers(policy, topo, inventory, now)
    repo = Repository.init(LocalStore(work / "repo"), "pw", kdf=KdfParams(n=1 << 10))
    result = run_backup(
        plan,
        repo,
        ListReporter(),
        RunOptions(staging=work / "staging"),
        quiescers={"journaling": Journaling(journal, spool / "queue")},
    )
    snapshots = [s for s in repo.snapshots() if "part=topology" not in s.tags]
    print(
        json.dumps(
            {
                "status": result.status.value,
                "movers": [i.message for i in result.items],
                "snapshots": [s.metadata for s in snapshots],
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
