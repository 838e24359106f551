"""Holding a set's tiers and taking its cut, for :mod:`haprotect.engine.backup`.

The sources the cuts need (their movers' ``cut_needs_source``: a standby to
pause at the cut) are chosen first, before anything is held, so the hold does not wait on health
checks; then the tiers are held top-down, every item's cut is taken, and the
tiers resume bottom-up (:mod:`haprotect.engine.quiescing`). Meanwhile the
quiescers and cuts share their connections, one per server
(:mod:`haprotect.sessions`), closed once the tiers have resumed. What happened is
written into the set's metadata and the run's issues.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from haprotect import sessions
from haprotect.engine import quiescing
from haprotect.engine.backup_context import BackupContext
from haprotect.engine.events import Note
from haprotect.model.plan import PlanSet, SourceChoice
from haprotect.model.snapshot import JSONValue
from haprotect.movers import CutHandle
from haprotect.quiesce import HeldTiers, HoldAborted, QuiesceSpec, held


def choose_before_hold(ctx: BackupContext, pset: PlanSet) -> dict[str, SourceChoice]:
    """The source of each item whose cut needs it, chosen before the tiers are held."""
    choices: dict[str, SourceChoice] = {}
    for tier in pset.tiers:
        for item in tier.items:
            mover = quiescing.item_mover(ctx.movers, item)
            if mover is None or not mover.cut_needs_source(item):
                continue
            choices[item.scope] = ctx.settle(item, mover)
    return choices


def hold_and_cut(
    ctx: BackupContext,
    pset: PlanSet,
    block: dict[str, JSONValue],
    specs: list[QuiesceSpec],
    cutdir: Path,
    choices: Mapping[str, SourceChoice],
    cut_name: str,
) -> tuple[dict[str, CutHandle], str | None]:
    """Hold the tiers, take the cuts, resume; the cuts, or why nothing is copied."""
    scope = f"set {pset.name}"
    cuts: dict[str, CutHandle] = {}
    problems: list[str] = []
    aborted: str | None = None
    holding: HeldTiers
    try:
        # The quiescers and cuts share one connection per server (a database's primary).
        with sessions.shared(), held(specs, ctx.quiescers) as holding:
            cuts, problems = quiescing.take_cuts(
                ctx.plan,
                pset,
                ctx.movers,
                cutdir,
                choices,
                cut_name,
                quiescing.frozen_devices(specs),
            )
    except HoldAborted as exc:
        holding, aborted = exc.holding, exc.message
        for problem in quiescing.release_all(cuts):
            ctx.result.error(scope, problem)
        for problem in quiescing.discard_all(cuts):
            ctx.result.warn(scope, problem)
    block["quiesce"] = quiescing.quiesce_block(holding, cuts, aborted)
    for issue in holding.issues:
        ctx.result.error(
            scope, f"quiesce {issue.kind} of tier {issue.tier} ({issue.phase}): {issue.message}"
        )
    for problem in problems:
        ctx.result.warn(scope, problem)
    for window in holding.windows:
        if window.seconds is not None:
            ctx.reporter.emit(
                Note(scope, f"tier {window.tier} held by {window.kind} {window.seconds:.3f}s")
            )
    if aborted is not None:
        return {}, f"not backed up: the tiers could not be quiesced ({aborted})"
    return cuts, None
