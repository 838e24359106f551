"""What every step of a backup run shares: the plan, the repository, the options, the outcome.

:class:`BackupContext` is handed from the run (:mod:`haprotect.engine.backup`)
to its steps: holding a set's tiers and taking its cut
(:mod:`haprotect.engine.backup_hold`) and copying one item
(:mod:`haprotect.engine.backup_item`).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from haprotect.engine.events import Note, Reporter
from haprotect.engine.quiescing import MoverLookup
from haprotect.engine.result import ResultBuilder
from haprotect.model.plan import Plan, PlanItem, SourceChoice
from haprotect.movers import CutHandle, Mover
from haprotect.plan.choose import settle
from haprotect.quiesce import Quiescer
from haprotect.repo import Repository

STAGING_ENV = "HAPROTECT_STAGING"

QuiescerLookup = Mapping[str, Quiescer]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``staging``: where movers stage data (default ``$HAPROTECT_STAGING``, else
    ``<tmp>/haprotect-staging``); ``wait_seconds``: how long a ``wait`` fallback
    waits for a standby."""

    staging: Path | None = None
    wait_seconds: float = 60.0
    wait_interval: float = 1.0


def staging_root(options: RunOptions) -> Path:
    if options.staging is not None:
        return options.staging
    env = os.environ.get(STAGING_ENV)
    return Path(env) if env else Path(tempfile.gettempdir()) / "haprotect-staging"


@dataclass(frozen=True, slots=True)
class BackupContext:
    """The run's shared state; ``movers`` and ``quiescers`` are lookups tests may inject."""

    plan: Plan
    repo: Repository
    reporter: Reporter
    options: RunOptions
    cancel: threading.Event
    movers: MoverLookup
    quiescers: QuiescerLookup | None
    result: ResultBuilder

    def settle(self, item: PlanItem, mover: Mover) -> SourceChoice:
        """The node to read ``item`` from, checked now (waiting if the policy says so)."""
        inventory = self.plan.inventory
        return settle(
            item.source,
            lambda n: mover.probe(item, n, inventory),
            wait_seconds=self.options.wait_seconds,
            interval=self.options.wait_interval,
        )

    def release(self, item: PlanItem, cut: CutHandle) -> None:
        """Let the cut's source go on, as soon as its copy has been read."""
        if cut.released:
            return
        problem = cut.release()
        if problem is not None:
            self.result.error(item.scope, problem)
            return
        note = cut.release_note()
        if note is not None:
            self.reporter.emit(Note(item.scope, note))


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "item"
