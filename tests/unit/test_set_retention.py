"""Retention of snapshot sets over a year of hourly sets, against a reference of the rules.

The sets are made in memory (their snapshots' metadata as a backup writes
it), one an hour for a year, some of them partial in each of the ways a
set can be. What the policy's retention keeps is computed here a second
time, plainly, from the calendar periods, and must be exactly what
``forget`` keeps.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from haprotect.engine.set_retention import (
    NEWER_PARTIAL,
    NEWEST_COMPLETE,
    Judgement,
    judge,
    keep_policy,
)
from haprotect.engine.sets import FORMAT
from haprotect.model.policy import Retention
from haprotect.model.snapshot import FileError, JSONValue, Snapshot
from haprotect.policy import default_rules, generate
from haprotect.policy.io import dump_policy, load_policy
from haprotect.policy.rules_file import load_rules
from haprotect.repo.maintenance.retention import Duration, KeepPolicy
from haprotect.testing.builders import topology, web_cluster

START = datetime(2024, 3, 1, 0, 17, tzinfo=UTC)
HOURS = 366 * 24
ITEMS = (("storage", "fs_data"), ("database", "pg_main"))


@dataclass(frozen=True)
class Simulated:
    id: str
    started: datetime
    complete: bool
    snapshots: tuple[Snapshot, ...]


def simulate_set(n: int, started: datetime, damage: str | None, app: str = "shop") -> Simulated:
    """Set number ``n``: a topology snapshot and one per item, as a backup writes them.

    ``damage``: ``missing`` (an item failed or Ctrl-C), ``unreadable`` (files
    could not be read), ``late`` (the copy misses writes), ``no-topology``.
    """
    set_id = f"{app[:2]}{n:010x}"
    block: dict[str, JSONValue] = {
        "id": set_id,
        "name": app,
        "cluster": "c1",
        "application": app,
        "started": started.isoformat(),
        "tiers": [{"name": t, "depends_on": [], "datasets": [d]} for t, d in ITEMS],
        "restore_order": [t for t, _ in ITEMS],
        "quiesce_order": [t for t, _ in reversed(ITEMS)],
        "items": [{"tier": t, "dataset": d} for t, d in ITEMS],
    }

    def snapshot(part: str, minutes: int, tier: str | None, dataset: str | None) -> Snapshot:
        meta: dict[str, JSONValue] = {
            "format": FORMAT,
            "part": part,
            "application": app,
            "dataset": dataset,
            "tier": tier,
            "set": block,
        }
        errors: tuple[FileError, ...] = ()
        if dataset is not None:
            problems = ["the copy ends before the cut"] if damage == "late" else []
            meta["item"] = {"tier": tier, "dataset": dataset, "node": "node2", "problems": problems}
            if damage == "unreadable" and dataset == "fs_data":
                errors = (FileError("srv/data/locked", "Permission denied"),)
        path = (
            f"/haprotect/c1/datasets/{dataset}" if dataset else "/haprotect/c1/topology/shop.json"
        )
        return Snapshot(
            id=f"{set_id}-{part}-{dataset or 'topology'}",
            time=started + timedelta(minutes=minutes),
            host="node2",
            username="root",
            paths=(path,),
            tags=("haprotect-set", f"set={set_id}", f"app={app}"),
            metadata=meta,
            errors=errors,
        )

    parts = [] if damage == "no-topology" else [snapshot("topology", 0, None, None)]
    for minute, (tier, dataset) in enumerate(ITEMS, start=1):
        if damage == "missing" and dataset == "pg_main":
            continue
        # items end up to 50 minutes later: some in the next hour, not the set's
        parts.append(snapshot("item", minute * 25, tier, dataset))
    return Simulated(set_id, started, damage is None, tuple(parts))


DAMAGE = ("missing", "unreadable", "late", "no-topology")


def a_year(seed: int, failing_at_end: int) -> list[Simulated]:
    """One set an hour for a year; about one in twelve partial; the last
    ``failing_at_end`` all partial (backups failing since)."""
    rng = random.Random(seed)
    sets = []
    for n in range(HOURS):
        started = START + timedelta(hours=n, seconds=rng.randint(0, 900))
        damage = rng.choice(DAMAGE) if rng.random() < 1 / 12 else None
        if n >= HOURS - failing_at_end:
            damage = rng.choice(DAMAGE)
        sets.append(simulate_set(n, started, damage))
    return sets


# -- the reference: the rules, written out over calendar periods -------------------

PERIODS: dict[str, Callable[[datetime], Hashable]] = {
    "hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: t.isocalendar()[:2],
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: t.year,
}


def reference(sets: list[Simulated], policy: KeepPolicy, tz: tzinfo) -> set[str]:
    """What the keep rules keep, computed directly from their definitions."""
    newest_first = sorted(sets, key=lambda s: s.started, reverse=True)
    complete = [s for s in newest_first if s.complete]
    keep: set[str] = set()
    keep.update(s.id for s in complete[: policy.last if policy.last >= 0 else None])
    for name, period_of in PERIODS.items():
        limit = getattr(policy, name)
        periods_seen: list[Hashable] = []
        for s in complete:
            period = period_of(s.started.astimezone(tz))
            if period in periods_seen:
                continue  # an older set of a period already kept
            if limit >= 0 and len(periods_seen) == limit:
                break
            periods_seen.append(period)
            keep.add(s.id)
    if policy.within is not None and newest_first:
        cutoff = policy.within.before(newest_first[0].started)
        keep.update(s.id for s in newest_first if s.started > cutoff)
    if complete:
        keep.add(complete[0].id)  # the last complete set is never removed
        keep.update(s.id for s in newest_first if s.started > complete[0].started)
    else:
        keep.update(s.id for s in sets)
    return keep


def policy_retention(kind: str) -> Retention:
    """The retention the default rules give a data set: ``ha`` or not."""
    rules = replace(default_rules(), include_non_ha=True)
    policy = generate(topology(web_cluster()), rules, source="file:///t", now=START)
    retentions = {i.retention for i in policy.items}
    ha = {r for r in retentions if r.keep_hourly}
    return next(iter(ha if kind == "ha" else retentions - ha))


def kept_and_removed(judged: Judgement, sets: list[Simulated]) -> set[str]:
    """The ids of the kept sets, after checking that each set is kept or removed whole."""
    removed = set(judged.removed)
    kept = set()
    for s in sets:
        ids = {p.id for p in s.snapshots}
        assert ids <= removed or not ids & removed, f"set {s.id} split"
        if not ids & removed:
            kept.add(s.id)
    return kept


def every_snapshot(sets: list[Simulated]) -> list[Snapshot]:
    return [p for s in sets for p in s.snapshots]


@pytest.mark.parametrize(
    ("kind", "failing_at_end", "zone"),
    [
        ("ha", 0, "UTC"),
        ("ha", 30, "Europe/Paris"),  # its DST changes: hours and days in local time
        ("normal", 0, "Europe/Paris"),
        ("normal", 200, "UTC"),
    ],
)
def test_the_policys_retention_keeps_exactly_what_it_says_over_a_year(
    kind: str, failing_at_end: int, zone: str
) -> None:
    tz = ZoneInfo(zone)
    sets = a_year(seed=12 + failing_at_end, failing_at_end=failing_at_end)
    policy = keep_policy(policy_retention(kind))
    judged = judge(every_snapshot(sets), policy, tz=tz)
    assert len(judged.sets) == 1 and judged.others == ()
    assert judged.sets[0].key == {"cluster": "c1", "application": "shop"}
    kept = kept_and_removed(judged, sets)
    assert kept == reference(sets, policy, tz)
    # what the rules say, counted: one complete set per period, as many periods as asked
    counted = {s.id for s in sets if s.complete} & kept
    last_complete = max((s for s in sets if s.complete), key=lambda s: s.started)
    assert last_complete.id in kept
    assert {s.id for s in sets if s.started > last_complete.started} <= kept
    if kind == "ha":
        assert 12 + 8 + 14 + 24 > len(counted) >= 24
    else:
        assert len(counted) <= 7 + 4 + 3


def test_a_set_is_kept_whole_with_every_rule_behind_it() -> None:
    sets = a_year(seed=1, failing_at_end=0)[-48:]
    judged = judge(every_snapshot(sets), keep_policy(Retention(keep_hourly=6, keep_daily=2)))
    (group,) = judged.sets
    decisions = {d.set.id: d for d in group.decisions}
    newest = max((s for s in sets if s.complete), key=lambda s: s.started)
    assert decisions[newest.id].keep
    assert decisions[newest.id].reasons[0].startswith("keep-hourly 6: newest of ")
    assert any(r.startswith("keep-daily 2") for r in decisions[newest.id].reasons)
    for s in sets:
        assert {p.id for p in decisions[s.id].snapshots} == {p.id for p in s.snapshots}


def test_the_last_complete_set_is_never_removed() -> None:
    """Backups have failed for two days: a keep-within 12h alone would keep only partial sets."""
    sets = a_year(seed=3, failing_at_end=48)[-24 * 10 :]
    policy = KeepPolicy(within=Duration(hours=12))
    judged = judge(every_snapshot(sets), policy, tz=UTC)
    kept = kept_and_removed(judged, sets)
    assert kept == reference(sets, policy, UTC)
    last_complete = max((s for s in sets if s.complete), key=lambda s: s.started)
    (decision,) = [d for d in judged.sets[0].decisions if d.set.id == last_complete.id]
    assert decision.keep and decision.reasons == (NEWEST_COMPLETE,)
    partial_kept = [d for d in judged.sets[0].decisions if d.keep and not d.set.complete]
    assert len(partial_kept) == 48
    assert any(d.reasons == (NEWER_PARTIAL,) for d in partial_kept)
    older = [s for s in sets if s.started < last_complete.started]
    assert not {s.id for s in older} & kept


def test_keep_last_counts_complete_sets_only() -> None:
    sets = [
        simulate_set(n, START + timedelta(hours=n), d)
        for n, d in enumerate([None, None, "missing", None, "late", "unreadable"])
    ]
    judged = judge(every_snapshot(sets), KeepPolicy(last=2), tz=UTC)
    kept = kept_and_removed(judged, sets)
    # the two newest complete sets (1 and 3), and the partial ones newer than them (4, 5)
    assert kept == {sets[1].id, sets[3].id, sets[4].id, sets[5].id}


def test_app_and_dataset_choose_what_is_judged() -> None:
    shop = [simulate_set(n, START + timedelta(hours=n), None) for n in range(5)]
    blog = [simulate_set(n, START + timedelta(hours=n), None, app="blog") for n in range(5)]
    loose = Snapshot(
        "loose", START, "h", "root", ("/etc",), metadata={"application": "shop", "dataset": "x"}
    )
    snapshots = [*every_snapshot(shop), *every_snapshot(blog), loose]
    only_blog = judge(snapshots, KeepPolicy(last=1), applications=["blog"], tz=UTC)
    assert [g.key["application"] for g in only_blog.sets] == ["blog"]
    assert only_blog.others == ()
    assert kept_and_removed(only_blog, blog) == {blog[-1].id}
    assert not set(only_blog.removed) & {p.id for p in every_snapshot(shop)}
    by_dataset = judge(snapshots, KeepPolicy(last=1), datasets=["pg_main"], tz=UTC)
    assert sorted(str(g.key["application"]) for g in by_dataset.sets) == ["blog", "shop"]
    none = judge(snapshots, KeepPolicy(last=1), datasets=["nope"], tz=UTC)
    assert none.sets == () and none.removed == []
    loose_only = judge(snapshots, KeepPolicy(last=1), datasets=["x"], tz=UTC)
    assert [d.snapshot.id for g in loose_only.others for d in g.decisions] == ["loose"]


def test_a_policy_s_keep_last_keeps_the_newest_complete_sets(tmp_path: Path) -> None:
    """``keep_last: 1`` in a policy file: only the newest complete set (and newer partial) stays."""
    rules = tmp_path / "rules.yaml"
    zero = ", ".join(f"{name}: 0" for name in Retention.FIELDS[1:])
    only_last = f"{{keep_last: 1, {zero}}}"
    rules.write_text(f"ha:\n  retention: {only_last}\nnon_ha:\n  retention: {only_last}\n")
    generated = generate(topology(web_cluster()), load_rules(rules), source="file:///t", now=START)
    saved = tmp_path / "policy.yaml"
    saved.write_text(dump_policy(generated))
    assert "keep_last: 1" in saved.read_text()
    retention = load_policy(saved).items[0].retention
    assert retention.keep_last == 1 and retention.keep_hourly == 0
    assert keep_policy(retention, Retention(keep_daily=3)) == KeepPolicy(last=1, daily=3)
    sets = [
        simulate_set(n, START + timedelta(hours=n), d)
        for n, d in enumerate([None, None, None, "missing"])
    ]
    kept = kept_and_removed(judge(every_snapshot(sets), keep_policy(retention), tz=UTC), sets)
    assert kept == {sets[2].id, sets[3].id}


def test_keep_last_is_written_only_when_set() -> None:
    assert "keep_last" not in Retention(keep_daily=7).as_dict()
    assert Retention(keep_last=2).as_dict()["keep_last"] == 2
