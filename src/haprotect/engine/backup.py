"""Running a backup plan: each set as one snapshot set, each item by its mover.

For each set of the plan (an application, or a data set planned alone):

1. a set id is drawn, and the topology the run was planned from is stored
   as the set's first snapshot (``topology.json``);
2. when its tiers have quiescers, they are held top-down, the cut of every
   item is taken by its mover while held (``Mover.prepare_cut``: a
   point-in-time copy of a directory, a database standby paused at the
   primary's position), and they are resumed bottom-up
   before anything is copied (:mod:`haprotect.engine.quiescing`); a hold
   that fails with ``on_error: fail`` fails the set's items, every tier
   resumed; with ``continue`` the run ends PartiallyFailed, saying why;
3. the items are copied tier by tier in quiesce order (top-down), except
   that a tier whose source was paused at the cut goes first. Just
   before each copy the source choice is checked again with the mover's
   probe (:func:`haprotect.plan.choose.settle`): a standby that stopped or
   fell behind since planning triggers the policy's fallback, and a
   ``wait`` fallback waits here;
4. the mover writes one snapshot with the set's metadata
   (:mod:`haprotect.engine.sets`). A set none of whose items was stored
   leaves nothing: its topology snapshot is removed again.

An item's failure is recorded and the run goes on; files a mover could not
read make the item ``partial``. The run ends Completed, PartiallyFailed or
Failed (:mod:`haprotect.engine.result`). Staging directories are removed
whatever happens.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

from haprotect.engine import quiescing, sets
from haprotect.engine.backup_context import (
    BackupContext,
    QuiescerLookup,
    RunOptions,
    staging_root,
)
from haprotect.engine.backup_hold import choose_before_hold, hold_and_cut
from haprotect.engine.backup_item import back_up_item
from haprotect.engine.events import (
    Reporter,
    RunFinished,
    RunStarted,
    SetFinished,
    SetStarted,
    TierFinished,
    TierStarted,
)
from haprotect.engine.quiescing import MoverLookup
from haprotect.engine.result import ResultBuilder
from haprotect.errors import HaprotectError
from haprotect.model.plan import Plan, PlanSet, SourceChoice
from haprotect.model.result import ItemStatus, Result
from haprotect.model.snapshot import JSONValue
from haprotect.model.topology_json import topology_to_json
from haprotect.movers import CutHandle, get_mover, remove_tree
from haprotect.redact import display_url
from haprotect.repo import Repository

__all__ = ["MoverLookup", "QuiescerLookup", "RunOptions", "run_backup"]


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
        self.plan = plan
        self.repo = repo
        self.reporter = reporter
        self.result = ResultBuilder("backup", reporter)
        self.staging = staging_root(options)
        self.ctx = BackupContext(
            plan, repo, reporter, options, cancel, movers, quiescers, self.result
        )

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
            SetStarted(
                set_id, pset.name, pset.application, display_url(self.repo.url), pset.quiesce_order
            )
        )
        workdir = self.staging / set_id
        try:
            block["topology"] = self._topology(pset, block, workdir / "topology")
        except (HaprotectError, OSError) as exc:
            self.result.error(
                f"set {pset.name}", f"the topology copy of set {set_id} was not stored: {exc}"
            )
        ok = True
        stored = False
        cuts: dict[str, CutHandle] = {}
        cut_name = f"haprotect-cut-{set_id}"  #: under a location's cut_dir
        try:
            refused: str | None = None
            choices: dict[str, SourceChoice] = {}
            specs = quiescing.quiesce_specs(self.plan, pset, self.ctx.movers)
            if specs:
                choices = choose_before_hold(self.ctx, pset)
                cuts, refused = hold_and_cut(
                    self.ctx, pset, block, specs, workdir / "cut", choices, cut_name
                )
            for tier_name in quiescing.copy_order(pset, cuts):
                tier = pset.tier(tier_name)
                self.reporter.emit(TierStarted(set_id, tier.name, len(tier.items)))
                statuses = [
                    back_up_item(
                        self.ctx,
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
                stored = stored or any(s in (ItemStatus.OK, ItemStatus.PARTIAL) for s in statuses)
                self.reporter.emit(TierFinished(set_id, tier.name, tier_ok))
        finally:
            for problem in quiescing.release_all(cuts):
                self.result.error(f"set {pset.name}", problem)
            for problem in quiescing.discard_all(cuts):
                self.result.warn(f"set {pset.name}", problem)
            remove_tree(workdir)
        topology = block.get("topology")
        if not stored and isinstance(topology, str):
            self._drop_empty_set(pset, set_id, topology)
        self.reporter.emit(SetFinished(set_id, pset.name, ok))

    def _drop_empty_set(self, pset: PlanSet, set_id: str, topology: str) -> None:
        """Remove the topology snapshot of a set that holds nothing else."""
        try:
            self.repo.forget(topology)
        except HaprotectError as exc:
            self.result.warn(
                f"set {pset.name}", f"set {set_id} stored nothing, but its topology stays: {exc}"
            )

    def _topology(self, pset: PlanSet, block: dict[str, JSONValue], workdir: Path) -> str:
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = workdir / "topology.json"
        path.write_text(json.dumps(topology_to_json(self.plan.topology), indent=1) + "\n")
        snapshot = self.repo.backup(
            [path],
            tags=[*sets.set_tags(block, None, None), "part=topology"],
            metadata=sets.topology_metadata(block),
            host=self.plan.inventory.this_host or None,
            record_as=sets.topology_path(pset.cluster, pset.name),
        )
        return snapshot.id
