"""Retention goldens: fixed snapshot times → which are kept, by which rule, and which removed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from haprotect.errors import UsageError
from haprotect.model.snapshot import JSONValue, Snapshot
from haprotect.repo import KdfParams, Repository
from haprotect.repo.maintenance.retention import (
    DEFAULT_GROUP_BY,
    Duration,
    Group,
    KeepPolicy,
    apply_policy,
    parse_group_by,
    select,
)
from haprotect.storage.memory import MemoryStore

REMOVED = ("no keep rule applies",)


def snap(
    name: str,
    when: str,
    *,
    host: str = "db1",
    paths: tuple[str, ...] = ("/data",),
    tags: tuple[str, ...] = (),
    **metadata: JSONValue,
) -> Snapshot:
    return Snapshot(
        id=name,
        time=datetime.fromisoformat(when).replace(tzinfo=UTC),
        host=host,
        username="root",
        paths=paths,
        tags=tags,
        metadata=metadata,
    )


def verdicts(groups: list[Group]) -> dict[str, tuple[str, ...]]:
    """Snapshot → its reasons; removed ones map to REMOVED."""
    return {d.snapshot.id: d.reasons for g in groups for d in g.decisions}


def kept(groups: list[Group]) -> list[str]:
    return sorted(s.id for g in groups for s in g.kept)


WEEK = [
    snap("s01", "2025-01-01T10:00"),
    snap("s02", "2025-01-01T22:00"),
    snap("s03", "2025-01-02T10:00"),
    snap("s04", "2025-01-03T09:00"),
    snap("s05", "2025-01-03T21:00"),
    snap("s06", "2025-01-06T10:00"),  # a Monday: ISO week 2025-W02 starts
    snap("s07", "2025-01-07T10:00"),
    snap("s08", "2025-01-07T11:00"),
]


def test_golden_last_daily_weekly() -> None:
    groups = apply_policy(WEEK, KeepPolicy(last=2, daily=3, weekly=2), tz=UTC)
    assert verdicts(groups) == {
        "s08": (
            "keep-last 2: the 1st newest",
            "keep-daily 3: newest of 2025-01-07 (1st period)",
            "keep-weekly 2: newest of week 2025-W02 (1st period)",
        ),
        "s07": ("keep-last 2: the 2nd newest",),
        "s06": ("keep-daily 3: newest of 2025-01-06 (2nd period)",),
        "s05": (
            "keep-daily 3: newest of 2025-01-03 (3rd period)",
            "keep-weekly 2: newest of week 2025-W01 (2nd period)",
        ),
        "s04": REMOVED,
        "s03": REMOVED,
        "s02": REMOVED,
        "s01": REMOVED,
    }
    (group,) = groups
    assert [s.id for s in group.removed] == ["s04", "s03", "s02", "s01"], "newest first"
    assert group.key == {"host": "db1", "paths": ["/data"], "application": None, "dataset": None}


def test_golden_unlimited_daily_keeps_the_newest_of_every_day() -> None:
    groups = apply_policy(WEEK, KeepPolicy(daily=-1), tz=UTC)
    assert kept(groups) == ["s02", "s03", "s05", "s06", "s08"]
    assert verdicts(groups)["s02"] == ("keep-daily all: newest of 2025-01-01 (5th period)",)


def test_golden_periods_are_local_time() -> None:
    late = [snap("a", "2025-01-01T22:30"), snap("b", "2025-01-01T23:30")]
    berlin = apply_policy(late, KeepPolicy(daily=2), tz=ZoneInfo("Europe/Berlin"))
    assert verdicts(berlin) == {
        "b": ("keep-daily 2: newest of 2025-01-02 (1st period)",),
        "a": ("keep-daily 2: newest of 2025-01-01 (2nd period)",),
    }
    utc = apply_policy(late, KeepPolicy(daily=2), tz=UTC)
    assert verdicts(utc) == {
        "b": ("keep-daily 2: newest of 2025-01-01 (1st period)",),
        "a": REMOVED,
    }


def test_golden_hourly_around_a_daylight_saving_change() -> None:
    # Berlin leaves summer time on 2025-10-26: 02:00-03:00 local happens twice
    times = [
        snap("h1", "2025-10-25T23:40"),  # 01:40 CEST
        snap("h2", "2025-10-26T00:10"),  # 02:10 CEST
        snap("h3", "2025-10-26T00:50"),  # 02:50 CEST
        snap("h4", "2025-10-26T01:10"),  # 02:10 CET, the same local hour again
    ]
    groups = apply_policy(times, KeepPolicy(hourly=3), tz=ZoneInfo("Europe/Berlin"))
    assert verdicts(groups) == {
        "h4": ("keep-hourly 3: newest of 2025-10-26 02:00 (1st period)",),
        "h3": REMOVED,
        "h2": REMOVED,
        "h1": ("keep-hourly 3: newest of 2025-10-26 01:00 (2nd period)",),
    }


def test_golden_monthly_and_yearly() -> None:
    times = [
        snap("m1", "2023-06-15T12:00"),
        snap("m2", "2023-12-31T23:00"),
        snap("m3", "2024-01-15T12:00"),
        snap("m4", "2024-02-01T12:00"),
        snap("m5", "2024-02-20T12:00"),
    ]
    groups = apply_policy(times, KeepPolicy(monthly=2, yearly=2), tz=UTC)
    assert verdicts(groups) == {
        "m5": (
            "keep-monthly 2: newest of 2024-02 (1st period)",
            "keep-yearly 2: newest of 2024 (1st period)",
        ),
        "m4": REMOVED,
        "m3": ("keep-monthly 2: newest of 2024-01 (2nd period)",),
        "m2": ("keep-yearly 2: newest of 2023 (2nd period)",),
        "m1": REMOVED,
    }


def test_golden_within_counts_from_the_groups_newest_snapshot() -> None:
    times = [
        snap("w1", "2020-03-01T00:00"),
        snap("w2", "2020-03-08T09:00"),  # exactly 2d3h before the newest: out
        snap("w3", "2020-03-08T09:01"),
        snap("w4", "2020-03-10T12:00"),
    ]
    groups = apply_policy(times, KeepPolicy(within=Duration.parse("2d3h")), tz=UTC)
    reason = "keep-within 2d3h: less than 2d3h older than the group's newest (2020-03-10 12:00)"
    assert verdicts(groups) == {"w4": (reason,), "w3": (reason,), "w2": REMOVED, "w1": REMOVED}


def test_golden_tags_are_kept_whatever_their_age() -> None:
    times = [
        snap("t1", "2024-01-01T00:00", tags=("release",)),
        snap("t2", "2024-06-01T00:00"),
        snap("t3", "2025-01-01T00:00"),
    ]
    groups = apply_policy(times, KeepPolicy(last=1, tags=("release",)), group_by=(), tz=UTC)
    assert verdicts(groups) == {
        "t3": ("keep-last 1: the 1st newest",),
        "t2": REMOVED,
        "t1": ("keep-tag: has tag release",),
    }


def test_golden_never_deletes_another_groups_snapshots() -> None:
    times = [
        snap("a1", "2025-01-01T00:00", host="a"),
        snap("a2", "2025-01-02T00:00", host="a"),
        snap("a3", "2025-01-03T00:00", host="a"),
        snap("b1", "2024-01-01T00:00", host="b"),  # far older than all of a's
        snap("c1", "2025-01-01T00:00", host="a", paths=("/etc",)),
        snap("s1", "2025-01-01T00:00", host="a", application="shop", dataset="orders"),
        snap("s2", "2025-01-02T00:00", host="a", application="shop", dataset="orders"),
        snap("p1", "2025-01-01T00:00", host="a", application="shop", dataset="pages"),
    ]
    groups = apply_policy(times, KeepPolicy(last=1), tz=UTC)
    assert kept(groups) == ["a3", "b1", "c1", "p1", "s2"]
    assert sorted(s.id for g in groups for s in g.removed) == ["a1", "a2", "s1"]
    assert len(groups) == 5
    one_group = apply_policy(times, KeepPolicy(last=1), group_by=(), tz=UTC)
    assert kept(one_group) == ["a3"], "without grouping only the newest of all is kept"


def test_grouping_by_application_keeps_one_history_across_failovers() -> None:
    # the standby that is read from changes with each failover
    times = [
        snap("n1", "2025-01-01T00:00", host="node1", application="shop", dataset="db"),
        snap("n2", "2025-01-02T00:00", host="node2", application="shop", dataset="db"),
        snap("n3", "2025-01-03T00:00", host="node1", application="shop", dataset="db"),
    ]
    policy = KeepPolicy(last=2)
    by_host = apply_policy(times, policy, tz=UTC)
    assert kept(by_host) == ["n1", "n2", "n3"], "split by host, each host keeps its own two"
    by_app = apply_policy(times, policy, group_by=parse_group_by("application,dataset"), tz=UTC)
    assert kept(by_app) == ["n2", "n3"]


def test_select_filters_by_host_and_tag() -> None:
    times = [
        snap("x", "2025-01-01T00:00", host="a", tags=("nightly",)),
        snap("y", "2025-01-01T00:00", host="b", tags=("nightly",)),
        snap("z", "2025-01-01T00:00", host="a"),
    ]
    assert [s.id for s in select(times, hosts=["a"])] == ["x", "z"]
    assert [s.id for s in select(times, hosts=["a"], tags=["nightly"])] == ["x"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2d3h", Duration(days=2, hours=3)),
        ("1y2m", Duration(years=1, months=2)),
        ("1w1d", Duration(days=8)),
        ("36h", Duration(hours=36)),
    ],
)
def test_durations(text: str, expected: Duration) -> None:
    assert Duration.parse(text) == expected


@pytest.mark.parametrize("text", ["", "2x", "d", "2 days", "-1d"])
def test_bad_durations_are_one_line_errors(text: str) -> None:
    with pytest.raises(UsageError, match="is not a duration"):
        Duration.parse(text)


def test_months_are_calendar_months() -> None:
    end_of_march = datetime(2025, 3, 31, 12, tzinfo=UTC)
    assert Duration(months=1).before(end_of_march) == datetime(2025, 2, 28, 12, tzinfo=UTC)
    assert Duration(years=1, hours=12).before(end_of_march) == datetime(2024, 3, 31, tzinfo=UTC)


def test_group_by_parsing() -> None:
    assert parse_group_by("host, paths,application") == ("host", "paths", "application")
    assert parse_group_by("none") == ()
    assert ",".join(DEFAULT_GROUP_BY) == "host,paths,application,dataset"
    with pytest.raises(UsageError, match="cannot group snapshots by hots"):
        parse_group_by("hots,paths")


def test_an_empty_policy_is_refused() -> None:
    with pytest.raises(UsageError, match="no keep rule"):
        apply_policy(WEEK, KeepPolicy())


def test_apply_retention_forgets_only_snapshot_blobs(tmp_path: Path) -> None:
    store = MemoryStore()
    repo = Repository.init(store, "pw", kdf=KdfParams(n=1 << 10))
    src = tmp_path / "src"
    src.mkdir()
    made = []
    for i in range(3):
        (src / f"f{i}").write_bytes(bytes([i]) * 5000)
        made.append(repo.backup([src]))
    packs_before = sorted(b.key for b in store.list("data/"))
    preview = repo.apply_retention(KeepPolicy(last=1), dry_run=True)
    assert [s.id for s in preview[0].removed] == [made[1].id, made[0].id]
    assert len(repo.snapshots()) == 3, "a dry run removes nothing"
    repo.apply_retention(KeepPolicy(last=1))
    assert [s.id for s in repo.snapshots()] == [made[2].id]
    assert sorted(b.key for b in store.list("data/")) == packs_before, "data stays until prune"
