"""Retention of snapshot sets: a set is kept or removed whole, never its last complete one.

A set's snapshots (its items and its topology) are one restore point, so
``forget`` judges **sets**, not their snapshots:

* Sets are grouped by what they back up: their cluster and application, or
  for a data set backed up alone, that data set. ``--group-by`` applies to
  the other snapshots only.
* A set's time is when it started. The counting rules (``last``,
  ``hourly`` ... ``yearly``) count **complete** sets only, with the
  semantics of :mod:`haprotect.repo.maintenance.retention`: a partial set never
  stands for its hour or day, because a restore of ``latest`` would never
  choose it. ``within`` (back from the group's newest set) and ``tags``
  keep sets of either kind.
* A partial set newer than the group's newest complete set is kept: it may
  hold the only copy of data since.
* The newest complete set of a group is never removed: a policy that would
  remove it keeps it, and says so.
* A set is kept with all its snapshots, or removed with all of them.

Snapshots that belong to no set are judged as :mod:`haprotect.repo.maintenance.retention`
says. Everything here is pure: the caller lists the snapshots and forgets
the removed ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import tzinfo

from haprotect.engine.sets import FORMAT, read_sets
from haprotect.model.plan import SnapshotSet
from haprotect.model.policy import Retention
from haprotect.model.snapshot import JSONValue, Snapshot
from haprotect.repo.maintenance.retention import (
    DEFAULT_GROUP_BY,
    Group,
    KeepPolicy,
    apply_policy,
    require_rules,
    select,
)

NEWEST_COMPLETE = "the newest complete set of its group: never removed"
NEWER_PARTIAL = "partial, newer than every complete set: may hold the only copy since"
_COUNTS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


@dataclass(frozen=True, slots=True)
class SetDecision:
    """Whether one snapshot set is kept (with all its snapshots), and the rules that keep it."""

    set: SnapshotSet
    snapshots: tuple[Snapshot, ...]  #: every snapshot of the set in the repository
    keep: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetGroup:
    """The snapshot sets of one group, each with its decision, newest first."""

    key: dict[str, JSONValue]
    decisions: tuple[SetDecision, ...] = ()  #: newest first

    @property
    def kept(self) -> list[SnapshotSet]:
        return [d.set for d in self.decisions if d.keep]

    @property
    def removed(self) -> list[SnapshotSet]:
        return [d.set for d in self.decisions if not d.keep]


@dataclass(frozen=True, slots=True)
class Judgement:
    """The sets' groups and the other snapshots' groups, each decision with its reasons."""

    sets: tuple[SetGroup, ...] = ()
    others: tuple[Group, ...] = field(default=())

    @property
    def removed(self) -> list[str]:
        """The ids of every snapshot to forget."""
        ids = [s.id for g in self.sets for d in g.decisions if not d.keep for s in d.snapshots]
        return ids + [s.id for g in self.others for s in g.removed]


def keep_policy(*retentions: Retention) -> KeepPolicy:
    """A policy's retention as keep rules; of several, what any of them keeps."""
    return KeepPolicy(
        last=max((r.keep_last for r in retentions), default=0),
        hourly=max((r.keep_hourly for r in retentions), default=0),
        daily=max((r.keep_daily for r in retentions), default=0),
        weekly=max((r.keep_weekly for r in retentions), default=0),
        monthly=max((r.keep_monthly for r in retentions), default=0),
        yearly=max((r.keep_yearly for r in retentions), default=0),
    )


def set_key(s: SnapshotSet) -> dict[str, JSONValue]:
    """The group of a set: its cluster and application, or its data set if it has none."""
    if s.application is not None:
        return {"cluster": s.cluster, "application": s.application}
    return {"cluster": s.cluster, "dataset": s.name}


def set_datasets(s: SnapshotSet) -> set[str]:
    return {d for _, d in s.planned} | {i.dataset for i in s.items}


def judge(
    snapshots: Iterable[Snapshot],
    policy: KeepPolicy,
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    *,
    applications: Sequence[str] = (),
    datasets: Sequence[str] = (),
    hosts: Sequence[str] = (),
    tags: Sequence[str] = (),
    tz: tzinfo | None = None,
) -> Judgement:
    """Judge every set and every other snapshot by ``policy``.

    ``applications`` and ``datasets`` (empty: any) choose the sets of those
    applications that hold those data sets, and the other snapshots whose
    metadata names them; ``hosts`` and ``tags`` choose the other snapshots
    that match and the sets one of whose snapshots matches. What is not
    chosen is not judged, and stays.
    """
    require_rules(policy)
    members: dict[str, list[Snapshot]] = {}
    others: list[Snapshot] = []
    for snapshot in snapshots:
        set_id = _set_id(snapshot)
        if set_id is None:
            others.append(snapshot)
        else:
            members.setdefault(set_id, []).append(snapshot)
    every = [s for group in members.values() for s in group]
    groups: dict[str, tuple[dict[str, JSONValue], list[SnapshotSet]]] = {}
    for s in read_sets(every):
        chosen = select(members[s.id], hosts=hosts, tags=tags)
        if not chosen or (applications and s.application not in applications):
            continue
        if datasets and not set(datasets) & set_datasets(s):
            continue
        key = set_key(s)
        groups.setdefault(repr(sorted(key.items())), (key, []))[1].append(s)
    judged = tuple(
        SetGroup(key, _judge_sets(found, members, policy, tz))
        for _, (key, found) in sorted(groups.items())
    )
    plain = [
        s
        for s in select(others, hosts=hosts, tags=tags)
        if (not applications or s.metadata.get("application") in applications)
        and (not datasets or s.metadata.get("dataset") in datasets)
    ]
    return Judgement(judged, tuple(apply_policy(plain, policy, group_by, tz=tz)))


def _set_id(snapshot: Snapshot) -> str | None:
    block = snapshot.metadata.get("set")
    if snapshot.metadata.get("format") != FORMAT or not isinstance(block, Mapping):
        return None
    return str(block.get("id") or "") or None


def _judge_sets(
    found: list[SnapshotSet],
    members: Mapping[str, list[Snapshot]],
    policy: KeepPolicy,
    tz: tzinfo | None,
) -> tuple[SetDecision, ...]:
    ordered = sorted(found, key=lambda s: (s.started, s.id), reverse=True)
    reasons: dict[str, list[str]] = {s.id: [] for s in ordered}
    complete = [s for s in ordered if s.complete]
    counting = replace(policy, within=None, tags=())
    if complete and any(getattr(counting, name) for name in _COUNTS):
        units = [_unit(s, members[s.id]) for s in complete]
        for decision in apply_policy(units, counting, (), tz=tz)[0].decisions:
            if decision.keep:
                reasons[decision.snapshot.id] += decision.reasons
    if policy.within is not None and ordered:
        cutoff = policy.within.before(ordered[0].started)
        for s in ordered:
            if s.started > cutoff:
                reasons[s.id].append(
                    f"keep-within {policy.within}: less than {policy.within} older than the "
                    "group's newest set"
                )
    if policy.tags:
        for s in ordered:
            found_tags = sorted(set(policy.tags) & {t for m in members[s.id] for t in m.tags})
            if found_tags:
                reasons[s.id].append(f"keep-tag: has tag {', '.join(found_tags)}")
    newest = complete[0] if complete else None
    for s in ordered:
        if s is newest:
            break
        if not s.complete and not reasons[s.id]:
            reasons[s.id].append(NEWER_PARTIAL)
    if newest is not None and not reasons[newest.id]:
        reasons[newest.id].append(NEWEST_COMPLETE)
    return tuple(
        SetDecision(
            s,
            tuple(sorted(members[s.id], key=lambda m: (m.time, m.id))),
            bool(reasons[s.id]),
            tuple(reasons[s.id]) or _removed(s),
        )
        for s in ordered
    )


def _removed(s: SnapshotSet) -> tuple[str, ...]:
    if s.complete:
        return ("no keep rule applies",)
    return ("no keep rule applies (a partial set stands for no period)",)


def _unit(s: SnapshotSet, snapshots: Sequence[Snapshot]) -> Snapshot:
    """A set as one snapshot at its start, for the counting rules."""
    return Snapshot(
        id=s.id,
        time=s.started,
        host="",
        username="",
        paths=(),
        tags=tuple(sorted({t for m in snapshots for t in m.tags})),
    )
