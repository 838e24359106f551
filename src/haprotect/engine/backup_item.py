"""Copying one item of a set, for :mod:`haprotect.engine.backup`.

The item's source is settled (or kept as chosen before the hold, when the
cut paused it), the location adjusted to the cut (the mover's handle: a copy
made while held, a source paused at the cut), the mover run with a fresh staging directory,
and what came back judged: a copy that misses part of the cut or could not
read some files is ``partial``; one that holds more than the cut says so in
a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from haprotect.engine import sets
from haprotect.engine.backup_context import BackupContext, safe_name
from haprotect.engine.events import ItemProgress, ItemRef, ItemStarted, Note
from haprotect.engine.result import explain
from haprotect.errors import HaprotectError
from haprotect.model.plan import PlanItem, PlanSet, SourceChoice
from haprotect.model.progress import ProgressEvent
from haprotect.model.result import ItemStatus
from haprotect.model.snapshot import JSONValue
from haprotect.movers import BackupJob, CutHandle, remove_tree

log = logging.getLogger(__name__)


def back_up_item(
    ctx: BackupContext,
    pset: PlanSet,
    set_id: str,
    block: dict[str, JSONValue],
    item: PlanItem,
    workdir: Path,
    cut: CutHandle | None = None,
    refused: str | None = None,
    chosen: SourceChoice | None = None,
) -> ItemStatus:
    ref = ItemRef(set_id, pset.name, item.cluster, item.tier, item.dataset, item.kind)
    started, clock = datetime.now(UTC), time.monotonic()
    node = item.source.node
    ctx.reporter.emit(ItemStarted(ref, f"back up {item.dataset} ({item.kind})", node))

    def finish(
        status: ItemStatus,
        message: str,
        snapshot_id: str | None = None,
        used: str | None = node,
        details: dict[str, JSONValue] | None = None,
    ) -> ItemStatus:
        return ctx.result.finish_item(
            ref,
            status,
            message,
            snapshot_id=snapshot_id,
            node=used,
            started=started,
            clock=clock,
            details=details,
        )

    if refused is not None:
        return finish(ItemStatus.FAILED, refused)
    if ctx.cancel.is_set():
        return finish(ItemStatus.SKIPPED, "cancelled before it started")
    if item.problems or item.mover is None:
        return finish(ItemStatus.FAILED, "; ".join(item.problems) or "no mover")
    try:
        mover = ctx.movers(item.mover)
    except HaprotectError as exc:
        return finish(ItemStatus.FAILED, explain(exc))
    inventory = ctx.plan.inventory
    # The node chosen before the hold is kept when the cut paused it there; otherwise the
    # choice is checked again now, as for any copy (a standby may have gone since).
    paused = chosen is not None and cut is not None and cut.paused_at is not None
    choice = chosen if paused and chosen is not None else ctx.settle(item, mover)
    if choice.node is None:
        return finish(ItemStatus.FAILED, "no node to read from: " + "; ".join(choice.reasons))
    if choice.fallback_used:
        ctx.result.warn(item.scope, "; ".join(choice.reasons))
    else:
        ctx.reporter.emit(Note(item.scope, "; ".join(choice.reasons)))
    location = inventory.location(choice.node, item.cluster, item.dataset, item.cluster_location)
    access = inventory.access(choice.node)
    restore_to = sets.restore_node(ctx.plan.topology, item, choice.node)
    if cut is not None:
        location = cut.location(location)
        waited = cut.before_copy(choice.node)
        if waited is not None:
            ctx.reporter.emit(Note(item.scope, waited))

    def metadata(path_key: str | None, details: Mapping[str, JSONValue]) -> dict[str, JSONValue]:
        # A copy that ends before the cut is partial: the snapshot says so itself.
        late = cut.misses(details) if cut is not None else None
        return sets.item_metadata(
            block,
            item,
            choice,
            access,
            location,
            restore_to,
            started,
            path_key,
            details,
            problems=[late] if late else [],
        )

    def progress(event: ProgressEvent) -> None:
        ctx.reporter.emit(
            ItemProgress(
                ref,
                event.files_done,
                event.bytes_done,
                event.files_total,
                event.bytes_total,
                event.current,
            )
        )

    staging = workdir / safe_name(item.dataset)
    staging.mkdir(parents=True, exist_ok=True, mode=0o700)
    job = BackupJob(
        repo=ctx.repo,
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
        note=lambda message: ctx.reporter.emit(Note(item.scope, message)),
        cancel=ctx.cancel,
        paused_at=cut.paused_at if cut is not None else None,
        release_source=(lambda: None) if cut is None else lambda: ctx.release(item, cut),
        record_as=sets.item_path(item.cluster, item.dataset),
    )
    if cut is not None:
        try:
            cut.extend()  # the copy from the cut starts now
        except HaprotectError as exc:
            ctx.result.warn(item.scope, f"the cut's hold on its source was not renewed: {exc}")
    try:
        outcome = mover.backup(job)
    except HaprotectError as exc:
        return finish(ItemStatus.FAILED, explain(exc), used=choice.node)
    except Exception as exc:  # a mover's bug must not end the run
        log.exception("mover %s failed on %s", mover.name, item.scope)
        return finish(ItemStatus.FAILED, f"{type(exc).__name__}: {exc}", used=choice.node)
    finally:
        remove_tree(staging)
        if cut is not None:
            ctx.release(item, cut)
    details = dict(outcome.details)
    if cut is not None:
        cut_details = dict(cut.details)
        details["cut"] = cut_details
        late = cut.misses(details)
        if late is not None:
            ctx.result.error(item.scope, late)
            return finish(ItemStatus.PARTIAL, late, outcome.snapshot.id, choice.node, details)
        beyond = cut.exceeds(details)
        if beyond is not None:
            ctx.result.warn(item.scope, beyond)
        cut_details["exact"] = cut.paused_at is not None and beyond is None
    if outcome.vanished:
        gone = outcome.vanished
        ctx.reporter.emit(
            Note(
                item.scope,
                f"{len(gone)} files vanished while the backup ran, so they are not in it "
                f"(first: {gone[0].path})",
            )
        )
    if outcome.errors:
        first = outcome.errors[0]
        ctx.result.error(
            item.scope,
            f"{len(outcome.errors)} files could not be read and are not in snapshot "
            f"{outcome.snapshot.short_id} (first: {first.path}: {first.message})",
        )
        return finish(
            ItemStatus.PARTIAL, outcome.message, outcome.snapshot.id, choice.node, details
        )
    return finish(ItemStatus.OK, outcome.message, outcome.snapshot.id, choice.node, details)
