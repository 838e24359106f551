"""A backup finds its parent through the snapshot summaries, loading only the parent.

Snapshots are counted as they are loaded through the repository's
``snapshot_loader``; the summaries are a cache that forgets, stale entries,
damage, races and a crash between the snapshot and the summaries never turn
into a wrong or missing parent.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from haprotect.model.snapshot import Snapshot
from haprotect.repo import KdfParams, Repository
from haprotect.repo.format.crypto import SealedKind, seal
from haprotect.repo.format.snapshots import SNAPSHOTS_PREFIX, load_snapshot, write_snapshot
from haprotect.repo.format.summaries import (
    SUMMARIES_KEY,
    SnapshotSummaries,
    read_summaries,
)
from haprotect.storage.memory import MemoryStore

KDF = KdfParams(n=1 << 10)
MANY = 60


class Counting:
    """Loads snapshots from the store, counting each load by id."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.loads: list[str] = []

    def __call__(self, snapshot_id: str) -> Snapshot:
        self.loads.append(snapshot_id)
        return load_snapshot(self.repo.store, self.repo.key, snapshot_id)


class Fixture:
    def __init__(self, tmp_path: Path) -> None:
        self.store = MemoryStore()
        self.repo = Repository.init(self.store, "pw", kdf=KDF)
        self.src = tmp_path / "src"
        self.src.mkdir()
        (self.src / "a").write_bytes(b"a" * 5000)
        self.first = self.repo.backup([self.src], host="h1")
        self.paths = self.first.paths

    def older_records(self, count: int) -> list[Snapshot]:
        """``count`` snapshot records written directly, older than the first backup,
        of this host and of others (as a long-lived repository holds)."""
        written = []
        for i in range(count):
            record = replace(
                self.first,
                time=self.first.time - timedelta(hours=count - i),
                host="h1" if i % 2 else f"other{i % 5}",
            )
            written.append(write_snapshot(self.store, self.repo.key, record))
        return written

    def counted(self) -> tuple[Repository, Counting]:
        """The repository opened again, its snapshot loads counted."""
        repo = Repository.open(self.store, "pw")
        counting = Counting(repo)
        repo.snapshot_loader = counting
        return repo, counting

    def backup(self, repo: Repository) -> Snapshot:
        return repo.backup([self.src], host="h1")


@pytest.fixture
def fx(tmp_path: Path) -> Fixture:
    return Fixture(tmp_path)


def test_parent_found_among_many_snapshots_loading_only_the_parent(fx: Fixture) -> None:
    fx.older_records(MANY)
    latest = fx.backup(fx.repo)  # summarises the records written without summaries
    repo, counting = fx.counted()
    snapshot = fx.backup(repo)
    assert snapshot.parent == latest.id
    assert counting.loads == [latest.id]
    assert set(read_summaries(fx.store, repo.key)) == {
        i.key.removeprefix(SNAPSHOTS_PREFIX) for i in fx.store.list(SNAPSHOTS_PREFIX)
    }


def test_summaries_are_built_once_from_the_snapshots(fx: Fixture) -> None:
    fx.older_records(MANY)
    fx.store.delete(SUMMARIES_KEY)
    repo, counting = fx.counted()
    first = fx.backup(repo)
    assert first.parent == fx.first.id
    assert len(counting.loads) == MANY + 1  # every snapshot once, the parent not twice
    repo, counting = fx.counted()
    assert fx.backup(repo).parent == first.id
    assert counting.loads == [first.id]


def test_a_forgotten_parent_is_passed_over(fx: Fixture) -> None:
    fx.older_records(10)
    previous = fx.backup(fx.repo)
    latest = fx.backup(fx.repo)
    fx.repo.forget(latest.id)  # its summary stays in the blob
    repo, counting = fx.counted()
    assert fx.backup(repo).parent == previous.id
    assert counting.loads == [previous.id]


def test_a_parent_forgotten_while_the_backup_looks_does_not_fail_it(fx: Fixture) -> None:
    previous = fx.backup(fx.repo)
    latest = fx.backup(fx.repo)
    repo, counting = fx.counted()

    def forget_then_load(snapshot_id: str) -> Snapshot:
        if snapshot_id == latest.id:  # a concurrent forget, between listing and loading
            fx.store.delete(SNAPSHOTS_PREFIX + snapshot_id)
        return counting(snapshot_id)

    repo.snapshot_loader = forget_then_load
    snapshot = fx.backup(repo)
    assert snapshot.parent == previous.id
    assert latest.id not in read_summaries(fx.store, repo.key)


def test_a_snapshot_missing_from_stale_summaries_is_found(fx: Fixture) -> None:
    fx.older_records(10)
    fx.backup(fx.repo)
    # a backup that died after its snapshot and before the summaries, or a copy,
    # or an older haprotect: a newer snapshot the summaries do not hold
    newer = write_snapshot(
        fx.store, fx.repo.key, replace(fx.first, time=fx.first.time + timedelta(days=1))
    )
    repo, counting = fx.counted()
    assert fx.backup(repo).parent == newer.id
    assert counting.loads == [newer.id]
    assert newer.id in read_summaries(fx.store, repo.key)


def test_damaged_summaries_are_rebuilt(fx: Fixture, caplog: pytest.LogCaptureFixture) -> None:
    fx.older_records(5)
    latest = fx.backup(fx.repo)
    blob = bytearray(fx.store.get(SUMMARIES_KEY))
    blob[-3] ^= 1
    fx.store.put(SUMMARIES_KEY, bytes(blob))
    repo, counting = fx.counted()
    with caplog.at_level(logging.WARNING, logger="haprotect.repo"):
        assert fx.backup(repo).parent == latest.id
    assert SUMMARIES_KEY in caplog.text
    assert len(counting.loads) == 5 + 2
    assert len(read_summaries(fx.store, repo.key)) == 5 + 3


def test_summaries_that_lie_do_not_pick_the_parent(fx: Fixture) -> None:
    old = fx.older_records(3)
    latest = fx.backup(fx.repo)
    summaries = read_summaries(fx.store, fx.repo.key)
    # summaries sealed with the key but wrong about a snapshot: it claims to be the newest
    summaries[old[0].id] = replace(summaries[latest.id])
    from haprotect.repo.format.summaries import encode_summaries

    fx.store.put(
        SUMMARIES_KEY, seal(fx.repo.key, SealedKind.SUMMARIES, encode_summaries(summaries))
    )
    repo, counting = fx.counted()
    assert fx.backup(repo).parent == latest.id
    assert counting.loads[-1] == latest.id


def test_racing_writers_lose_no_snapshot_for_good(fx: Fixture) -> None:
    one = SnapshotSummaries(fx.store, fx.repo.key)
    two = SnapshotSummaries(fx.store, fx.repo.key)
    assert one.latest("h1", fx.paths) == two.latest("h1", fx.paths) == fx.first
    a = write_snapshot(fx.store, fx.repo.key, replace(fx.first, time=fx.first.time + timedelta(1)))
    b = write_snapshot(fx.store, fx.repo.key, replace(fx.first, time=fx.first.time + timedelta(2)))
    one.record(fx.store, [a])
    two.record(fx.store, [b])  # the last writer wins: a is not in the blob
    assert a.id not in read_summaries(fx.store, fx.repo.key)
    repo, counting = fx.counted()
    assert fx.backup(repo).parent == b.id
    assert set(counting.loads) == {a.id, b.id}
    assert a.id in read_summaries(fx.store, repo.key)


def test_other_hosts_and_paths_are_not_parents(fx: Fixture, tmp_path: Path) -> None:
    fx.older_records(6)
    repo, _ = fx.counted()
    assert repo.backup([fx.src], host="h2").parent is None
    other = tmp_path / "other"
    other.mkdir()
    assert repo.backup([fx.src, other], host="h1").parent is None
    assert fx.backup(repo).parent == fx.first.id
