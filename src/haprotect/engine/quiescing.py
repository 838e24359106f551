"""Quiescing a set: the specs from the plan, and the cut taken while the tiers are held.

A set whose tiers have quiescers (the policy's ``quiesce`` of each tier) is
backed up in three steps:

1. **hold**: :func:`quiesce_specs` lists the tiers' quiescers top-down (the
   plan's quiesce order) and :func:`haprotect.quiesce.held` holds them;
2. **cut**: :func:`take_cuts`, while held, makes every data set
   point-in-time: a files data set is copied (:mod:`haprotect.engine.cut_files`:
   reflinks where the filesystem has them, into the location's ``cut_dir``
   or the set's staging directory); for a PostgreSQL data set the primary's
   WAL insert position (``pg_current_wal_insert_lsn()``, past every commit
   it acknowledged) is recorded as the **cut LSN**, and the
   standby the copy will be read from (chosen before the hold) has its
   replay paused once it has replayed up to the cut LSN
   (:mod:`haprotect.movers.pgreplay`); other kinds are copied after resume,
   as without quiescing;
3. leaving the block resumes the tiers bottom-up (the gate replays what it
   queued), and the movers then copy from the cut: the files mover from the
   copy, the PostgreSQL mover from the paused standby, which resumes replay
   as soon as its base backup is done. The copy's end position must lie
   between the cut LSN and the pause LSN: then a restore (whose WAL ends at
   the backup's end) holds exactly what was committed before the cut. A copy
   that ends before the cut is an error; one that ends after the pause (the
   standby could not be paused, or its pause ended early) holds writes made
   after the cut, and says so in a warning.

A ``postgresql`` quiescer without a ``dsn`` option connects to the primary
of its tier's PostgreSQL data set, as the inventory reaches it.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from haprotect.engine import cut_files
from haprotect.engine.events import to_plain
from haprotect.errors import HaprotectError
from haprotect.model.inventory import Inventory
from haprotect.model.plan import Plan, PlanItem, PlanSet, PlanTier, SourceChoice
from haprotect.model.snapshot import JSONValue
from haprotect.movers import pgcheck, pgreplay
from haprotect.quiesce import HeldTiers, HoldWindow, OnError, QuiesceSpec

log = logging.getLogger(__name__)

#: How long a copy may take once the standby is asked to replay past the cut LSN.
CATCH_UP_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Cut:
    """What the cut made of one item: a copy of its directory, or the primary's LSN."""

    scope: str
    path: Path | None = None  #: files: the point-in-time copy
    path_key: str | None = None  #: files: the location parameter the copy replaces
    lsn: str | None = None  #: postgresql: the primary's WAL position at the cut
    details: dict[str, JSONValue] = field(default_factory=dict)
    pause: pgreplay.ReplayPause | None = field(default=None, compare=False)
    warning: str | None = None  #: the cut was taken, but not as well as it should be

    @property
    def paused_at(self) -> str | None:
        """Where the copy's source stands still, if its replay is paused at the cut."""
        return self.pause.lsn if self.pause is not None else None

    def release(self) -> str | None:
        """Let the source go on (resume a paused standby); a problem, or None. Idempotent."""
        return self.pause.resume() if self.pause is not None else None

    def location(self, location: Mapping[str, str]) -> dict[str, str]:
        """The location to copy from: the cut's copy in place of the live directory."""
        found = dict(location)
        if self.path is not None and self.path_key is not None:
            found[self.path_key] = str(self.path)
        return found


def quiesce_specs(plan: Plan, pset: PlanSet) -> list[QuiesceSpec]:
    """The set's quiescers, top tier first, as ``held()`` takes them."""
    specs: list[QuiesceSpec] = []
    for name in pset.quiesce_order:
        tier = pset.tier(name)
        for q in tier.quiesce:
            options = dict(q.options)
            if q.kind == "postgresql" and "dsn" not in options:
                dsn = primary_dsn(plan, tier)
                if dsn is not None:
                    options["dsn"] = dsn
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


def primary_dsn(plan: Plan, tier: PlanTier) -> str | None:
    """A libpq DSN for the primary of the tier's first PostgreSQL data set."""
    for item in tier.items:
        if item.kind != "postgresql":
            continue
        endpoint = _primary_endpoint(plan, item)
        if endpoint is not None:
            return (
                f"host={endpoint.host} port={endpoint.port} user={endpoint.user} "
                f"dbname={endpoint.dbname} application_name=haprotect-quiesce"
            )
    return None


def _primary_endpoint(plan: Plan, item: PlanItem) -> pgcheck.Endpoint | None:
    node = item.source.primary or item.source.node
    return None if node is None else pgcheck.Endpoint.of_item(plan.inventory, item, node)


def chosen_before_hold(item: PlanItem) -> bool:
    """Whether the item's source is chosen before the tiers are held (its cut needs it)."""
    return item.kind == "postgresql"


def take_cuts(
    plan: Plan,
    pset: PlanSet,
    root: Path,
    choices: Mapping[str, SourceChoice] | None = None,
    cut_name: str = "cut",
    frozen: Collection[int] = (),
) -> tuple[dict[str, Cut], list[str]]:
    """The cut of every item (by scope), and what could not be cut (copied after resume).

    Copies go under ``root``, or under ``<cut_dir>/<cut_name>`` for a location
    that has a ``cut_dir``. ``choices`` are the sources chosen before the
    hold (by scope), for the items :func:`chosen_before_hold` names;
    ``frozen`` the devices the set's quiescers froze, never written to. If
    taking them is interrupted, the standbys paused so far are resumed.
    """
    cuts: dict[str, Cut] = {}
    problems: list[str] = []
    try:
        _take(plan, pset, root, choices or {}, cut_name, frozen, cuts, problems)
    except BaseException:
        release_all(cuts)
        raise
    return cuts, problems


def _take(
    plan: Plan,
    pset: PlanSet,
    root: Path,
    choices: Mapping[str, SourceChoice],
    cut_name: str,
    frozen: Collection[int],
    cuts: dict[str, Cut],
    problems: list[str],
) -> None:
    for name in pset.quiesce_order:
        for item in pset.tier(name).items:
            choice = choices.get(item.scope)
            try:
                cut = _cut(plan, item, root, cut_name, choice.node if choice else None, frozen)
            except (HaprotectError, OSError, subprocess.SubprocessError) as exc:
                problems.append(f"{item.scope}: no cut ({exc}); copied after resume")
                continue
            except Exception as exc:  # a bug in one cut must not leave the others untaken
                log.exception("cut of %s failed", item.scope)
                problems.append(
                    f"{item.scope}: no cut ({type(exc).__name__}: {exc}); copied after resume"
                )
                continue
            if cut is not None:
                cuts[item.scope] = cut
                if cut.warning is not None:
                    problems.append(f"{item.scope}: {cut.warning}")


def copy_order(pset: PlanSet, cuts: Mapping[str, Cut]) -> list[str]:
    """The set's tiers in the order they are copied after resume.

    Quiesce order, except that tiers with a source paused at the cut come
    first: a paused standby falls further behind its primary for as long as
    it waits (and a failover to it would have all of that to replay), so it
    is copied, and let go, before anything else.
    """
    paused = [
        name
        for name in pset.quiesce_order
        if any(
            (cut := cuts.get(item.scope)) is not None and cut.pause is not None
            for item in pset.tier(name).items
        )
    ]
    return [*paused, *(name for name in pset.quiesce_order if name not in paused)]


def release_all(cuts: Mapping[str, Cut]) -> list[str]:
    """Release the sources not released yet; their problems, by scope (each said once)."""
    problems: list[str] = []
    for scope, cut in cuts.items():
        if cut.pause is None or cut.pause.resumed:
            continue
        problem = cut.release()
        if problem is not None:
            problems.append(f"{scope}: {problem}")
    return problems


def _cut(
    plan: Plan,
    item: PlanItem,
    root: Path,
    cut_name: str,
    node: str | None,
    frozen: Collection[int],
) -> Cut | None:
    target = cut_files.cut_target(plan, item, root, cut_name, frozen)
    if target is not None:
        key, directory, copy, warning = target
        method = cut_files.copy_tree(directory, copy)
        return Cut(
            item.scope,
            path=copy,
            path_key=key,
            details={"cut": method, "source": str(directory), "at": _now()},
            warning=warning,
        )
    if item.kind == "postgresql":
        endpoint = _primary_endpoint(plan, item)
        if endpoint is None:
            return None
        lsn = pgcheck.primary_lsn(endpoint, insert=True)
        details: dict[str, JSONValue] = {"cut_lsn": lsn, "at": _now(), "primary": endpoint.node}
        if node is None:
            return Cut(item.scope, lsn=lsn, details=details)
        if node == endpoint.node:
            warning = (
                f"its copy is read from the primary {node}, which does not stand still at the "
                "cut: it will also hold what was written after the cut"
            )
            return Cut(item.scope, lsn=lsn, details=details, warning=warning)
        standby = pgcheck.Endpoint.of_item(plan.inventory, item, node)
        try:
            pause = pgreplay.pause_at(standby, lsn, primary=endpoint)
        except HaprotectError as exc:
            warning = (
                f"the replay of {node} was not paused at the cut ({exc.message}); its copy "
                "will also hold what was written after the cut"
            )
            return Cut(item.scope, lsn=lsn, details=details, warning=warning)
        details.update(
            {
                "paused": node,
                "pause_lsn": pause.lsn,
                "pause_waited_seconds": round(pause.waited_seconds, 3),
            }
        )
        return Cut(item.scope, lsn=lsn, details=details, pause=pause)
    return None


def catch_up(inventory: Inventory, item: PlanItem, node: str, cut: Cut) -> str | None:
    """Let the standby replay past the cut LSN before its copy starts; a note if it did not."""
    if cut.lsn is None:
        return None
    endpoint = pgcheck.Endpoint.of_item(inventory, item, node)
    try:
        done, replayed = pgcheck.catch_up(endpoint, cut.lsn, CATCH_UP_SECONDS)
    except HaprotectError as exc:
        return f"cannot follow {node}'s replay: {exc}"
    if done:
        return None
    return (
        f"{node} did not replay up to the cut {cut.lsn} in {CATCH_UP_SECONDS:.0f}s (at {replayed})"
    )


def ends_before(details: Mapping[str, JSONValue], cut_lsn: str | None) -> str | None:
    """Why a PostgreSQL copy misses part of the cut, if its WAL ends before the cut LSN."""
    end = details.get("end_lsn")
    if cut_lsn is None or not isinstance(end, str):
        return None
    try:
        if pgcheck.lsn_int(end) >= pgcheck.lsn_int(cut_lsn):
            return None
    except ValueError:
        return None
    return f"the copy ends at WAL {end}, before the cut at {cut_lsn}: it misses writes"


def ends_after(details: Mapping[str, JSONValue], cut: Cut) -> str | None:
    """Why a PostgreSQL copy holds more than the cut, if its WAL ends past the pause.

    None when the copy is exactly the cut. A copy taken without a pause (the
    standby could not be paused, or the copy was read from the primary) is
    not checked: its cut's warning, if any, already said so.
    """
    end = details.get("end_lsn")
    paused_at = cut.paused_at
    if paused_at is None or not isinstance(end, str):
        return None
    try:
        if pgcheck.lsn_int(end) <= pgcheck.lsn_int(paused_at):
            return None
    except ValueError:
        return None
    return (
        f"the copy ends at WAL {end}, after the replay pause at {paused_at} (did the pause "
        "end early?): it also holds what was written after the cut"
    )


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
    holding: HeldTiers, cuts: Mapping[str, Cut], aborted: str | None
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


def _now() -> str:
    return datetime.now(UTC).isoformat()
