"""Restoring a snapshot set, tier by tier, bottom-up, each checked before the next.

The tiers of a restore plan come in restore order (storage, then database,
then application, then front end). Each item is restored by its mover,
which also checks it: a database must start and answer a query, a tree must
hold what the snapshot recorded. A tier is done when all its items are;
a tier that depends, directly or through others, on a tier that failed is
not restored at all (its items are ``skipped``), since bringing an
application back over a missing database helps no one. A tier restored
whole but for some files that lost data in a damaged repository (items
``partial``, each lost file named with its bytes) is there: the tiers that
depend on it are restored, with a warning naming it, and the run ends
PartiallyFailed. An item none of whose files could be restored failed (its
files are named all the same), as a run that restored nothing failed.
Tiers without data (an application or front-end tier that owns no data
set) are passed with a note: the cluster starts them again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from haprotect.engine.events import (
    ItemProgress,
    ItemRef,
    ItemStarted,
    Note,
    Reporter,
    RunFinished,
    RunStarted,
    SetFinished,
    SetStarted,
    TierFinished,
    TierStarted,
)
from haprotect.engine.result import ResultBuilder, explain
from haprotect.errors import HaprotectError
from haprotect.model.plan import RestoreItem, RestorePlan, RestoreTier, SetItem
from haprotect.model.progress import ProgressEvent
from haprotect.model.result import ItemStatus, Result
from haprotect.model.snapshot import FileError, JSONValue
from haprotect.movers import Mover, RestoreJob, get_mover
from haprotect.plan.graph import dependents
from haprotect.redact import display_url
from haprotect.repo import Repository

log = logging.getLogger(__name__)


def run_restore(
    plan: RestorePlan,
    repo: Repository,
    reporter: Reporter,
    cancel: threading.Event | None = None,
    *,
    movers: Callable[[str], Mover] = get_mover,
) -> Result:
    """Restore the plan's tiers in order; the result, also sent as RunFinished."""
    return _RestoreRun(plan, repo, reporter, cancel or threading.Event(), movers).run()


class _RestoreRun:
    def __init__(
        self,
        plan: RestorePlan,
        repo: Repository,
        reporter: Reporter,
        cancel: threading.Event,
        movers: Callable[[str], Mover],
    ) -> None:
        self.movers = movers
        self.plan = plan
        self.repo = repo
        self.reporter = reporter
        self.cancel = cancel
        self.result = ResultBuilder("restore", reporter)
        self.set = plan.set
        self.edges = {t.name: t.depends_on for t in plan.set.tiers}

    def run(self) -> Result:
        s = self.set
        self.result.sets.append(s.id)
        self.reporter.emit(RunStarted("restore", 1, len(self.plan.items), self.result.started))
        order = tuple(t.name for t in self.plan.tiers)
        self.reporter.emit(
            SetStarted(s.id, s.name, s.application, display_url(self.repo.url), order)
        )
        failed: set[str] = set()
        partial: set[str] = set()
        for tier in self.plan.tiers:
            outcome = self._tier(tier, failed, partial)
            if outcome is ItemStatus.PARTIAL:
                partial.add(tier.name)
            elif outcome is not ItemStatus.OK:
                failed.add(tier.name)
        self.reporter.emit(SetFinished(s.id, s.name, not failed and not partial))
        result = self.result.finish()
        self.reporter.emit(RunFinished(result))
        return result

    def _tier(self, tier: RestoreTier, failed: set[str], partial: set[str]) -> ItemStatus:
        """Restore one tier: OK, PARTIAL (some files lost data), or FAILED/SKIPPED."""
        s = self.set
        self.reporter.emit(TierStarted(s.id, tier.name, len(tier.items)))
        missing = [d for t, d in s.missing if t == tier.name]
        blocked = sorted(d for d in failed if tier.name in dependents([d], self.edges))
        if blocked:
            because = f"not restored: it depends on {', '.join(blocked)}, which did not restore"
            for planned in tier.items:
                self._finish(self._ref(planned.item), planned, ItemStatus.SKIPPED, because)
            self.result.warn(f"tier {tier.name}", because)
            self.reporter.emit(TierFinished(s.id, tier.name, False, because))
            return ItemStatus.SKIPPED
        lossy = sorted(d for d in partial if tier.name in dependents([d], self.edges))
        if lossy:
            self.result.warn(
                f"tier {tier.name}",
                f"restored over {', '.join(lossy)}, which lost files (named in its items)",
            )
        for dataset in missing:
            self.result.error(
                f"{s.cluster}/{dataset}",
                f"{dataset} of tier {tier.name} is not in set {s.id}: its backup failed",
            )
        if not tier.items and not missing:
            message = f"tier {tier.name} holds no data to restore; the cluster starts it again"
            self.reporter.emit(Note(f"tier {tier.name}", message))
            self.reporter.emit(TierFinished(s.id, tier.name, True, message))
            return ItemStatus.OK
        statuses = [self._item(planned) for planned in tier.items]
        if missing or any(st not in (ItemStatus.OK, ItemStatus.PARTIAL) for st in statuses):
            outcome, message = ItemStatus.FAILED, "not fully restored"
        elif ItemStatus.PARTIAL in statuses:
            outcome, message = ItemStatus.PARTIAL, "restored, but some files lost data"
        else:
            outcome, message = ItemStatus.OK, "restored and checked"
        self.reporter.emit(TierFinished(s.id, tier.name, outcome is ItemStatus.OK, message))
        return outcome

    def _ref(self, item: SetItem) -> ItemRef:
        return ItemRef(self.set.id, self.set.name, item.cluster, item.tier, item.dataset, item.kind)

    def _finish(
        self,
        ref: ItemRef,
        planned: RestoreItem,
        status: ItemStatus,
        message: str,
        started: datetime | None = None,
        clock: float | None = None,
        details: dict[str, JSONValue] | None = None,
    ) -> ItemStatus:
        return self.result.finish_item(
            ref,
            status,
            message,
            snapshot_id=planned.item.snapshot_id,
            node=planned.node,
            started=started,
            clock=clock,
            details=details,
        )

    def _item(self, planned: RestoreItem) -> ItemStatus:
        item = planned.item
        ref = self._ref(item)
        started, clock = datetime.now(UTC), time.monotonic()
        where = "its original place " if planned.in_place else ""
        self.reporter.emit(
            ItemStarted(
                ref,
                f"restore {item.dataset} ({item.kind}) to {where}{planned.target}",
                planned.node,
                planned.target,
            )
        )

        def done(status: ItemStatus, message: str, **extra: JSONValue) -> ItemStatus:
            return self._finish(ref, planned, status, message, started, clock, dict(extra))

        if self.cancel.is_set():
            return done(ItemStatus.SKIPPED, "cancelled before it started")
        if planned.problems:
            return done(ItemStatus.FAILED, "; ".join(planned.problems))
        try:
            mover = self.movers(item.mover)
        except HaprotectError as exc:
            return done(ItemStatus.FAILED, explain(exc))
        job = RestoreJob(
            repo=self.repo,
            item=item,
            target=Path(planned.target),
            in_place=planned.in_place,
            overwrite=self.plan.overwrite,
            keep_running=self.plan.keep_running,
            progress=self._progress(ref),
            note=lambda message: self.reporter.emit(Note(ref.scope, message)),
            cancel=self.cancel,
        )
        try:
            outcome = mover.restore(job)
        except HaprotectError as exc:
            return done(ItemStatus.FAILED, explain(exc))
        except Exception as exc:  # a mover's bug must not end the run
            log.exception("mover %s failed to restore %s", mover.name, ref.scope)
            return done(ItemStatus.FAILED, f"{type(exc).__name__}: {exc}")
        if outcome.errors:
            self.result.error(ref.scope, not_restored(outcome.errors))
            return self._finish(
                ref,
                planned,
                ItemStatus.FAILED if outcome.nothing_restored else ItemStatus.PARTIAL,
                outcome.message,
                started,
                clock,
                dict(outcome.details),
            )
        return self._finish(
            ref, planned, ItemStatus.OK, outcome.message, started, clock, dict(outcome.details)
        )

    def _progress(self, ref: ItemRef) -> Callable[[ProgressEvent], None]:
        def emit(event: ProgressEvent) -> None:
            self.reporter.emit(
                ItemProgress(
                    ref,
                    event.files_done,
                    event.bytes_done,
                    event.files_total,
                    event.bytes_total,
                    event.current,
                )
            )

        return emit


NAMED_FILES = 20
"""How many of the files an item could not restore its error names."""


def not_restored(errors: Sequence[FileError]) -> str:
    """``2 files could not be restored: /a/b: lost bytes 0-1023 (...); /c: ...``."""
    named = "; ".join(f"/{e.path}: {e.message}" for e in errors[:NAMED_FILES])
    more = f"; and {len(errors) - NAMED_FILES} more" if len(errors) > NAMED_FILES else ""
    return f"{len(errors)} files could not be restored: {named}{more}"
