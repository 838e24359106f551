"""Quiescing a set: the specs from the plan, and the cut taken while the tiers are held.

A set whose tiers have quiescers (the policy's ``quiesce`` of each tier) is
backed up in three steps:

1. **hold**: :func:`quiesce_specs` lists the tiers' quiescers top-down (the
   plan's quiesce order) and :func:`haprotect.quiesce.held` holds them;
2. **cut**: :func:`take_cuts`, while held, asks each item's mover to make
   its data point-in-time (``Mover.prepare_cut``, the mover contract's cut step):
   a directory copied with reflinks, a database standby whose replay is
   paused at the primary's position. Each mover returns a handle the copy
   reads from; an item whose mover has nothing to cut is copied after
   resume, as without quiescing;
3. leaving the block resumes the tiers bottom-up (the gate replays what it
   queued), and the movers then copy from the cut; each handle is released
   as soon as its copy has read it (a paused source goes on), and checks
   the copy against the cut (``misses``: an error; ``exceeds``: a warning).

The engine knows no kind of data: which sources must be chosen before the
hold (``cut_needs_source``) and the defaults a tier's quiescers take from
its data sets (``quiescer_options``: a database quiescer's DSN) come from
the movers too.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path

from haprotect.engine.events import to_plain
from haprotect.errors import HaprotectError
from haprotect.model.plan import Plan, PlanItem, PlanSet, SourceChoice
from haprotect.model.snapshot import JSONValue
from haprotect.movers import CutHandle, CutRequest, Mover
from haprotect.quiesce import HeldTiers, HoldWindow, OnError, QuiesceSpec

log = logging.getLogger(__name__)

MoverLookup = Callable[[str], Mover]


def item_mover(movers: MoverLookup, item: PlanItem) -> Mover | None:
    """The item's mover, or None when it has none (the item fails when its turn comes)."""
    if item.problems or not item.mover:
        return None
    try:
        return movers(item.mover)
    except HaprotectError:
        return None


def quiesce_specs(plan: Plan, pset: PlanSet, movers: MoverLookup) -> list[QuiesceSpec]:
    """The set's quiescers, top tier first, as ``held()`` takes them.

    A quiescer's options the policy leaves out are taken from the movers of
    the tier's data sets, the first that gives one winning.
    """
    specs: list[QuiesceSpec] = []
    for name in pset.quiesce_order:
        tier = pset.tier(name)
        for q in tier.quiesce:
            options = dict(q.options)
            for item in tier.items:
                mover = item_mover(movers, item)
                if mover is None:
                    continue
                for key, value in mover.quiescer_options(item, plan.inventory, q.kind).items():
                    options.setdefault(key, value)
            specs.append(
                QuiesceSpec(
                    kind=q.kind,
                    tier=tier.name,
                    timeout_seconds=q.timeout_seconds,
                    lease_seconds=q.lease_seconds,
                    on_error=OnError(q.on_error),
                    options=options,
                )
            )
    return specs


def frozen_devices(specs: Collection[QuiesceSpec]) -> frozenset[int]:
    """The devices of the filesystems the set's ``fsfreeze`` quiescers freeze."""
    found: set[int] = set()
    for spec in specs:
        mountpoint = spec.options.get("mountpoint") if spec.kind == "fsfreeze" else None
        if isinstance(mountpoint, str):
            try:
                found.add(os.stat(mountpoint).st_dev)
            except OSError:
                continue  # its quiescer says why it cannot freeze it
    return frozenset(found)


def take_cuts(
    plan: Plan,
    pset: PlanSet,
    movers: MoverLookup,
    root: Path,
    choices: Mapping[str, SourceChoice] | None = None,
    cut_name: str = "cut",
    frozen: Collection[int] = (),
) -> tuple[dict[str, CutHandle], list[str]]:
    """The cut of every item (by scope), and what could not be cut (copied after resume).

    Cuts write under ``root``, or under ``cut_name`` in a directory of
    their own outside it. ``choices`` are the sources chosen before the
    hold (by scope), for the items whose mover's ``cut_needs_source`` said
    so; ``frozen`` the devices the set's quiescers froze, never written to.
    If taking them is interrupted, the cuts taken so far are released.
    """
    cuts: dict[str, CutHandle] = {}
    problems: list[str] = []
    try:
        for name in pset.quiesce_order:
            for item in pset.tier(name).items:
                choice = (choices or {}).get(item.scope)
                request = CutRequest(
                    item,
                    plan.inventory,
                    root,
                    cut_name,
                    choice.node if choice else None,
                    frozenset(frozen),
                )
                cut = _cut(item_mover(movers, item), request, problems)
                if cut is not None:
                    cuts[item.scope] = cut
                    if cut.warning is not None:
                        problems.append(f"{item.scope}: {cut.warning}")
    except BaseException:
        release_all(cuts)
        discard_all(cuts)
        raise
    return cuts, problems


def _cut(mover: Mover | None, request: CutRequest, problems: list[str]) -> CutHandle | None:
    scope = request.item.scope
    if mover is None:
        return None
    try:
        return mover.prepare_cut(request)
    except (HaprotectError, OSError, subprocess.SubprocessError) as exc:
        problems.append(f"{scope}: no cut ({exc}); copied after resume")
    except Exception as exc:  # a bug in one cut must not leave the others untaken
        log.exception("cut of %s failed", scope)
        problems.append(f"{scope}: no cut ({type(exc).__name__}: {exc}); copied after resume")
    return None


def copy_order(pset: PlanSet, cuts: Mapping[str, CutHandle]) -> list[str]:
    """The set's tiers in the order they are copied after resume.

    Quiesce order, except that tiers with a source paused at the cut come
    first: a paused source (a database standby) falls further behind for as
    long as it waits (and a failover to it would have all of that to
    replay), so it is copied, and let go, before anything else.
    """
    paused = [
        name
        for name in pset.quiesce_order
        if any(
            (cut := cuts.get(item.scope)) is not None and cut.paused_at is not None
            for item in pset.tier(name).items
        )
    ]
    return [*paused, *(name for name in pset.quiesce_order if name not in paused)]


def release_all(cuts: Mapping[str, CutHandle]) -> list[str]:
    """Release the sources not released yet; their problems, by scope (each said once)."""
    problems: list[str] = []
    for scope, cut in cuts.items():
        if cut.released:
            continue
        problem = cut.release()
        if problem is not None:
            problems.append(f"{scope}: {problem}")
    return problems


def discard_all(cuts: Mapping[str, CutHandle]) -> list[str]:
    """Remove what the cuts wrote outside staging; what stayed, by scope."""
    stayed: list[str] = []
    for scope, cut in cuts.items():
        problem = cut.discard()
        if problem is not None:
            stayed.append(f"{scope}: {problem}")
    return stayed


def window_json(window: HoldWindow) -> dict[str, JSONValue]:
    return {
        "tier": window.tier,
        "kind": window.kind,
        "held_at": _iso(window.held_at),
        "resumed_at": _iso(window.resumed_at),
        "held_seconds": None if window.seconds is None else round(window.seconds, 3),
        "hold_details": to_plain(window.hold_details),
        "resume_details": to_plain(window.resume_details),
    }


def quiesce_block(
    holding: HeldTiers, cuts: Mapping[str, CutHandle], aborted: str | None
) -> dict[str, JSONValue]:
    """The ``set.quiesce`` metadata: windows, issues, and each item's cut."""
    return {
        "windows": [window_json(w) for w in holding.windows],
        "issues": [
            {"tier": i.tier, "kind": i.kind, "phase": i.phase, "message": i.message}
            for i in holding.issues
        ],
        "aborted": aborted,
        "cuts": {scope: dict(cut.details) for scope, cut in cuts.items()},
    }


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat()
