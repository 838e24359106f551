"""Running a backup plan: each set as one snapshot set, each item by its mover.

For each set of the plan (an application, or a data set planned alone):

1. a set id is drawn, and the topology the run was planned from is stored
   as the set's first snapshot (``topology.json``);
2. when its tiers have quiescers, they are held top-down, the cut of every
   item is taken while held (a point-in-time copy of a directory, the
   primary's WAL position for PostgreSQL), and they are resumed bottom-up
   before anything is copied (:mod:`haprotect.engine.quiescing`); a hold
   that fails with ``on_error: fail`` fails the set's items, every tier
   resumed; with ``continue`` the run ends PartiallyFailed, saying why;
3. the items are copied tier by tier in quiesce order (top-down). Just
   before each copy the source choice is checked again with the mover's
   probe (:func:`haprotect.plan.choose.settle`): a standby that stopped or
   fell behind since planning triggers the policy's fallback, and a
   ``wait`` fallback waits here;
4. the mover writes one snapshot with the set's metadata
   (:mod:`haprotect.engine.sets`).

An item's failure is recorded and the run goes on; files a mover could not
read make the item ``partial``. The run ends Completed, PartiallyFailed or
Failed (:mod:`haprotect.engine.result`). Staging directories are removed
whatever happens.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from haprotect.engine import quiescing, sets
from haprotect.engine.events import (
    ItemFinished,
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
from haprotect.model.plan import Plan, PlanItem, PlanSet, SourceChoice
from haprotect.model.progress import ProgressEvent
from haprotect.model.result import ItemResult, ItemStatus, Result
from haprotect.model.snapshot import JSONValue
from haprotect.model.topology_json import topology_to_json
from haprotect.movers import BackupJob, Mover, get_mover
from haprotect.plan.choose import settle
from haprotect.quiesce import HeldTiers, HoldAborted, Quiescer, QuiesceSpec, held
from haprotect.repo import Repository

log = logging.getLogger(__name__)

STAGING_ENV = "HAPROTECT_STAGING"

MoverLookup = Callable[[str], Mover]
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


def run_backup(
    plan: Plan,
    repo: Repository,
    reporter: Reporter,
    options: RunOptions | None = None,
    cancel: threading.Event | None = None,
    *,
    movers: MoverLookup = get_mover,
    quiescers: QuiescerLookup | None = None,
) -> Result:
    """Back up every set of ``plan`` into ``repo``; the result, also sent as RunFinished.

    ``movers`` finds a mover by name (the registry; tests inject fakes);
    ``quiescers`` maps quiescer names to quiescers (default: the registry).
    """
    run = _BackupRun(
        plan,
        repo,
        reporter,
        options or RunOptions(),
        cancel or threading.Event(),
        movers,
        quiescers,
    )
    return run.run()


class _BackupRun:
    def __init__(
        self,
        plan: Plan,
        repo: Repository,
        reporter: Reporter,
        options: RunOptions,
        cancel: threading.Event,
        movers: MoverLookup,
        quiescers: QuiescerLookup | None = None,
    ) -> None:
        self.movers = movers
        self.plan = plan
        self.repo = repo
        self.reporter = reporter
        self.options = options
        self.cancel = cancel
        self.result = ResultBuilder("backup", reporter)
        self.staging = staging_root(options)
        self.quiescers = quiescers

    def run(self) -> Result:
        self.reporter.emit(
            RunStarted("backup", len(self.plan.sets), len(self.plan.items), self.result.started)
        )
        for warning in self.plan.warnings:
            self.result.warn("run", warning)
        for pset in self.plan.sets:
            self._set(pset)
        result = self.result.finish()
        self.reporter.emit(RunFinished(result))
        return result

    def _set(self, pset: PlanSet) -> None:
        set_id = sets.new_set_id()
        started = datetime.now(UTC)
        self.result.sets.append(set_id)
        block = sets.set_block(self.plan, pset, set_id, started)
        self.reporter.emit(
            SetStarted(set_id, pset.name, pset.application, self.repo.url, pset.quiesce_order)
        )
        workdir = self.staging / set_id
        try:
            block["topology"] = self._topology(block, workdir / "topology")
        except (HaprotectError, OSError) as exc:
            self.result.error(
                f"set {pset.name}", f"the topology copy of set {set_id} was not stored: {exc}"
            )
        ok = True
        cuts: dict[str, quiescing.Cut] = {}
        try:
            refused: str | None = None
            choices: dict[str, SourceChoice] = {}
            specs = quiescing.quiesce_specs(self.plan, pset)
            if specs:
                choices = self._choose_before_hold(pset)
                cuts, refused = self._hold(pset, block, specs, workdir / "cut", choices)
            for tier_name in pset.quiesce_order:
                tier = pset.tier(tier_name)
                self.reporter.emit(TierStarted(set_id, tier.name, len(tier.items)))
                statuses = [
                    self._item(
                        pset,
                        set_id,
                        block,
                        item,
                        workdir,
                        cuts.get(item.scope),
                        refused,
                        choices.get(item.scope),
                    )
                    for item in tier.items
                ]
                tier_ok = all(s is ItemStatus.OK for s in statuses)
                ok = ok and tier_ok
                self.reporter.emit(TierFinished(set_id, tier.name, tier_ok))
        finally:
            for problem in quiescing.release_all(cuts):
                self.result.error(f"set {pset.name}", problem)
            _remove(workdir)
        self.reporter.emit(SetFinished(set_id, pset.name, ok))

    def _choose_before_hold(self, pset: PlanSet) -> dict[str, SourceChoice]:
        """The source of each item whose cut needs it, chosen before the tiers are held."""
        choices: dict[str, SourceChoice] = {}
        for tier in pset.tiers:
            for item in tier.items:
                if not quiescing.chosen_before_hold(item) or item.problems or not item.mover:
                    continue
                try:
                    mover = self.movers(item.mover)
                except HaprotectError:
                    continue  # the item fails with the reason when its turn comes
                choices[item.scope] = self._settle(item, mover)
        return choices

    def _settle(self, item: PlanItem, mover: Mover) -> SourceChoice:
        inventory = self.plan.inventory
        return settle(
            item.source,
            lambda n: mover.probe(item, n, inventory),
            wait_seconds=self.options.wait_seconds,
            interval=self.options.wait_interval,
        )

    def _hold(
        self,
        pset: PlanSet,
        block: dict[str, JSONValue],
        specs: list[QuiesceSpec],
        cutdir: Path,
        choices: Mapping[str, SourceChoice],
    ) -> tuple[dict[str, quiescing.Cut], str | None]:
        """Hold the tiers, take the cuts, resume; the cuts, or why nothing is copied."""
        scope = f"set {pset.name}"
        cuts: dict[str, quiescing.Cut] = {}
        problems: list[str] = []
        aborted: str | None = None
        holding: HeldTiers
        try:
            with held(specs, self.quiescers) as holding:
                cuts, problems = quiescing.take_cuts(self.plan, pset, cutdir, choices)
        except HoldAborted as exc:
            holding, aborted = exc.holding, exc.message
            for problem in quiescing.release_all(cuts):
                self.result.error(scope, problem)
        block["quiesce"] = quiescing.quiesce_block(holding, cuts, aborted)
        for issue in holding.issues:
            self.result.error(
                scope, f"quiesce {issue.kind} of tier {issue.tier} ({issue.phase}): {issue.message}"
            )
        for problem in problems:
            self.result.warn(scope, problem)
        for window in holding.windows:
            if window.seconds is not None:
                self.reporter.emit(
                    Note(scope, f"tier {window.tier} held by {window.kind} {window.seconds:.3f}s")
                )
        if aborted is not None:
            return {}, f"not backed up: the tiers could not be quiesced ({aborted})"
        return cuts, None

    def _topology(self, block: dict[str, JSONValue], workdir: Path) -> str:
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = workdir / "topology.json"
        path.write_text(json.dumps(topology_to_json(self.plan.topology), indent=1) + "\n")
        snapshot = self.repo.backup(
            [path],
            tags=[*sets.set_tags(block, None, None), "part=topology"],
            metadata=sets.topology_metadata(block),
            host=self.plan.inventory.this_host or None,
        )
        return snapshot.id

    def _item(
        self,
        pset: PlanSet,
        set_id: str,
        block: dict[str, JSONValue],
        item: PlanItem,
        workdir: Path,
        cut: quiescing.Cut | None = None,
        refused: str | None = None,
        chosen: SourceChoice | None = None,
    ) -> ItemStatus:
        ref = ItemRef(set_id, pset.name, item.cluster, item.tier, item.dataset, item.kind)
        started, clock = datetime.now(UTC), time.monotonic()
        node = item.source.node
        self.reporter.emit(ItemStarted(ref, f"back up {item.dataset} ({item.kind})", node))

        def finish(
            status: ItemStatus,
            message: str,
            snapshot_id: str | None = None,
            used: str | None = node,
            details: dict[str, JSONValue] | None = None,
        ) -> ItemStatus:
            if status is ItemStatus.FAILED:
                self.result.error(item.scope, message)
            self.result.add(
                ItemResult(
                    item.scope,
                    set_id,
                    item.tier,
                    item.dataset,
                    status,
                    message,
                    snapshot_id,
                    used,
                    started,
                    datetime.now(UTC),
                    details or {},
                )
            )
            seconds = round(time.monotonic() - clock, 3)
            self.reporter.emit(ItemFinished(ref, status, message, snapshot_id, used, seconds))
            return status

        if refused is not None:
            return finish(ItemStatus.FAILED, refused)
        if self.cancel.is_set():
            return finish(ItemStatus.SKIPPED, "cancelled before it started")
        if item.problems or item.mover is None:
            return finish(ItemStatus.FAILED, "; ".join(item.problems) or "no mover")
        try:
            mover = self.movers(item.mover)
        except HaprotectError as exc:
            return finish(ItemStatus.FAILED, explain(exc))
        inventory = self.plan.inventory
        choice = chosen if chosen is not None else self._settle(item, mover)
        if choice.node is None:
            return finish(ItemStatus.FAILED, "no node to read from: " + "; ".join(choice.reasons))
        if choice.fallback_used:
            self.result.warn(item.scope, "; ".join(choice.reasons))
        else:
            self.reporter.emit(Note(item.scope, "; ".join(choice.reasons)))
        location = inventory.location(
            choice.node, item.cluster, item.dataset, item.cluster_location
        )
        access = inventory.access(choice.node)
        restore_to = sets.restore_node(self.plan.topology, item, choice.node)
        if cut is not None and cut.path is not None:
            location = cut.location(location)
        primary = cut.details.get("primary") if cut is not None else None
        if cut is not None and cut.paused_at is None and cut.lsn and choice.node != primary:
            waited = quiescing.catch_up(inventory, item, choice.node, cut)
            if waited is not None:
                self.reporter.emit(Note(item.scope, waited))

        def metadata(
            path_key: str | None, details: Mapping[str, JSONValue]
        ) -> dict[str, JSONValue]:
            return sets.item_metadata(
                block, item, choice, access, location, restore_to, started, path_key, details
            )

        def progress(event: ProgressEvent) -> None:
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

        staging = workdir / _safe(item.dataset)
        staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        job = BackupJob(
            repo=self.repo,
            item=item,
            node=choice.node,
            access=access,
            location=location,
            source=choice,
            inventory=inventory,
            tags=tuple(sets.set_tags(block, item.tier, item.dataset)),
            staging=staging,
            make_metadata=metadata,
            progress=progress,
            note=lambda message: self.reporter.emit(Note(item.scope, message)),
            cancel=self.cancel,
            paused_at=cut.paused_at if cut is not None else None,
            release_source=(lambda: None) if cut is None else lambda: self._release(item, cut),
        )
        try:
            outcome = mover.backup(job)
        except HaprotectError as exc:
            return finish(ItemStatus.FAILED, explain(exc), used=choice.node)
        except Exception as exc:  # a mover's bug must not end the run
            log.exception("mover %s failed on %s", mover.name, item.scope)
            return finish(ItemStatus.FAILED, f"{type(exc).__name__}: {exc}", used=choice.node)
        finally:
            _remove(staging)
            if cut is not None:
                self._release(item, cut)
        details = dict(outcome.details)
        if cut is not None:
            cut_details = dict(cut.details)
            details["cut"] = cut_details
            late = quiescing.ends_before(details, cut.lsn)
            if late is not None:
                self.result.error(item.scope, late)
                return finish(ItemStatus.PARTIAL, late, outcome.snapshot.id, choice.node, details)
            beyond = quiescing.ends_after(details, cut)
            if beyond is not None:
                self.result.warn(item.scope, beyond)
            cut_details["exact"] = cut.paused_at is not None and beyond is None
        if outcome.vanished:
            gone = outcome.vanished
            self.reporter.emit(
                Note(
                    item.scope,
                    f"{len(gone)} files vanished while the backup ran, so they are not in it "
                    f"(first: {gone[0].path})",
                )
            )
        if outcome.errors:
            first = outcome.errors[0]
            self.result.error(
                item.scope,
                f"{len(outcome.errors)} files could not be read and are not in snapshot "
                f"{outcome.snapshot.short_id} (first: {first.path}: {first.message})",
            )
            return finish(
                ItemStatus.PARTIAL, outcome.message, outcome.snapshot.id, choice.node, details
            )
        return finish(ItemStatus.OK, outcome.message, outcome.snapshot.id, choice.node, details)

    def _release(self, item: PlanItem, cut: quiescing.Cut) -> None:
        """Let the cut's source go on, as soon as its copy has been read."""
        if cut.pause is None or cut.pause.resumed:
            return
        problem = cut.release()
        if problem is not None:
            self.result.error(item.scope, problem)
        else:
            self.reporter.emit(Note(item.scope, f"{cut.pause.endpoint.node} replays again"))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "item"


def _remove(path: Path) -> None:
    if not path.exists():
        return
    for dirpath, _, _ in os.walk(path):
        try:
            os.chmod(dirpath, 0o700)
        except OSError:
            continue
    shutil.rmtree(path, ignore_errors=True)
