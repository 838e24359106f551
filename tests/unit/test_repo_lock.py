"""Lock semantics: shared and exclusive, staleness by age and by process, loss, unlock."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from haprotect.repo import KdfParams, Repository
from haprotect.repo.errors import LockLost, RepositoryLocked
from haprotect.repo.lock import GuardedStore, Locker
from haprotect.repo.lockfile import LOCKS_PREFIX, machine_id, parse_lock
from haprotect.storage.memory import MemoryStore

T0 = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Processes:
    """A fake process table: pid → start time; absent means dead."""

    def __init__(self, **alive: int) -> None:
        self.alive = {int(k.removeprefix("p")): v for k, v in alive.items()}

    def __call__(self, pid: int) -> int | None:
        return self.alive.get(pid)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def locker(
    store: MemoryStore,
    clock: Clock,
    pid: int,
    *,
    machine: str = "m1",
    processes: Processes | None = None,
) -> Locker:
    return Locker(
        store,
        clock=clock,
        pid=pid,
        host=f"host-{machine}",
        machine=machine,
        process=processes or Processes(p1=100, p2=200, p3=300),
        refresh_every=None,
        sleep=lambda _: None,
    )


def lock_keys(store: MemoryStore) -> list[str]:
    return sorted(b.key for b in store.list(LOCKS_PREFIX))


def test_shared_locks_coexist_and_exclude_an_exclusive_one(
    store: MemoryStore, clock: Clock
) -> None:
    a = locker(store, clock, 1).acquire(exclusive=False, operation="backup")
    clock.advance(minutes=1)
    b = locker(store, clock, 2).acquire(exclusive=False, operation="backup")
    assert len(lock_keys(store)) == 2
    with pytest.raises(RepositoryLocked) as caught:
        locker(store, clock, 3).acquire(exclusive=True, operation="prune")
    assert "prune cannot start" in caught.value.message
    assert "shared lock" in caught.value.message and "pid 1," in caught.value.message
    assert "and 1 more" in caught.value.message
    assert caught.value.exit_code == 8
    assert "unlock" in (caught.value.hint or "")
    assert len(lock_keys(store)) == 2, "the refused lock was removed again"
    a.release()
    b.release()
    assert lock_keys(store) == []
    c = locker(store, clock, 3).acquire(exclusive=True, operation="prune")
    with pytest.raises(RepositoryLocked, match=r"exclusive lock .*prune"):
        locker(store, clock, 1).acquire(exclusive=False, operation="backup")
    c.release()


def test_lock_blob_records_who_holds_it(store: MemoryStore, clock: Clock) -> None:
    held = locker(store, clock, 2).acquire(exclusive=True, operation="prune")
    (key,) = lock_keys(store)
    info = parse_lock(key.removeprefix(LOCKS_PREFIX), store.get(key))
    assert (info.exclusive, info.operation, info.pid, info.host) == (True, "prune", 2, "host-m1")
    assert info.time == T0 and info.process_start == 200 and info.machine == "m1"
    held.release()


def test_a_lock_not_refreshed_for_the_limit_is_stale_and_removed_with_a_note(
    store: MemoryStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    old = locker(store, clock, 1).acquire(exclusive=False, operation="backup")
    clock.advance(minutes=29)
    with pytest.raises(RepositoryLocked):
        locker(store, clock, 2).acquire(exclusive=True, operation="prune")
    clock.advance(minutes=2)
    (status,) = locker(store, clock, 2).locks()
    assert status.stale is not None and "not refreshed for 31 min" in status.stale
    with caplog.at_level(logging.WARNING, logger="haprotect.repo"):
        pruning = locker(store, clock, 2).acquire(exclusive=True, operation="prune")
    assert "removed stale shared lock" in caplog.text
    assert lock_keys(store) == [pruning.info.key]
    assert old.lost is not None
    pruning.release()


def test_refreshing_keeps_a_lock_fresh(store: MemoryStore, clock: Clock) -> None:
    held = locker(store, clock, 1).acquire(exclusive=False, operation="backup")
    clock.advance(minutes=20)
    held.refresh()
    clock.advance(minutes=20)
    (status,) = locker(store, clock, 2).locks()
    assert status.stale is None and status.info is not None
    assert status.info.time == T0 + timedelta(minutes=20)
    with pytest.raises(RepositoryLocked):
        locker(store, clock, 2).acquire(exclusive=True, operation="prune")
    held.check()
    held.release()


def test_a_dead_pid_on_the_same_machine_is_stale_on_another_machine_not(
    store: MemoryStore, clock: Clock
) -> None:
    processes = Processes(p1=100, p2=200)
    locker(store, clock, 7, processes=Processes(p7=700)).acquire(
        exclusive=False, operation="backup"
    )
    (same,) = locker(store, clock, 1, processes=processes).locks()
    assert same.stale == "process 7 on host-m1 is gone"
    (other,) = locker(store, clock, 1, machine="m2", processes=processes).locks()
    assert other.stale is None, "a pid on another machine says nothing"
    with pytest.raises(RepositoryLocked):
        locker(store, clock, 1, machine="m2", processes=processes).acquire(
            exclusive=True, operation="prune"
        )
    held = locker(store, clock, 1, processes=processes).acquire(exclusive=True, operation="prune")
    held.release()


def test_a_reused_pid_is_stale(store: MemoryStore, clock: Clock) -> None:
    locker(store, clock, 7, processes=Processes(p7=700)).acquire(
        exclusive=False, operation="backup"
    )
    (status,) = locker(store, clock, 1, processes=Processes(p7=999)).locks()
    assert status.stale is not None and "another process" in status.stale
    (alive,) = locker(store, clock, 1, processes=Processes(p7=700)).locks()
    assert alive.stale is None


def test_a_removed_lock_is_lost_and_guards_writes(store: MemoryStore, clock: Clock) -> None:
    held = locker(store, clock, 1).acquire(exclusive=False, operation="backup")
    guarded = GuardedStore(store, held)
    guarded.put("data/x", b"1")
    removed = locker(store, clock, 2).remove_all()
    assert [s.id for s in removed] == [held.info.id]
    held.refresh()
    assert held.lost == "it was removed by another process"
    assert lock_keys(store) == [], "a lost lock is not written again"
    with pytest.raises(LockLost, match="lost the shared lock"):
        guarded.put("data/y", b"2")
    with pytest.raises(LockLost):
        guarded.delete("data/x")
    assert guarded.get("data/x") == b"1", "reads still work"
    held.release()


def test_a_holder_frozen_past_the_limit_stops_writing(store: MemoryStore, clock: Clock) -> None:
    held = locker(store, clock, 1).acquire(exclusive=False, operation="backup")
    guarded = GuardedStore(store, held)
    clock.advance(minutes=29)
    guarded.put("a", b"1")
    clock.advance(minutes=2)
    with pytest.raises(LockLost, match="not refreshed for 31 min"):
        guarded.put("b", b"2")
    assert not store.exists("b")
    held.release()


def test_unlock_removes_only_stale_locks_unless_told_all(store: MemoryStore, clock: Clock) -> None:
    locker(store, clock, 1).acquire(exclusive=False, operation="backup")
    fresh = locker(store, clock, 2).acquire(exclusive=False, operation="backup")
    clock.advance(hours=1)
    fresh.refresh()
    removed = locker(store, clock, 3).remove_stale()
    assert [s.info.pid for s in removed if s.info] == [1]
    assert lock_keys(store) == [fresh.info.key]
    assert locker(store, clock, 3).remove_stale() == []
    assert len(locker(store, clock, 3).remove_all()) == 1
    assert lock_keys(store) == []


def test_an_unreadable_lock_blocks_nothing_and_unlock_removes_it(
    store: MemoryStore, clock: Clock
) -> None:
    junk = LOCKS_PREFIX + "ab" * 32
    store.put(junk, b"not json")
    store.put(LOCKS_PREFIX + "junk.tmp", b"not a lock at all")
    locker(store, clock, 1).acquire(exclusive=True, operation="prune").release()
    assert store.exists(junk), "taking a lock never deletes what it cannot read"
    (status,) = locker(store, clock, 1).locks()
    assert status.junk and "unreadable" in status.describe()
    assert [s.key for s in locker(store, clock, 1).remove_stale()] == [junk]
    assert lock_keys(store) == [LOCKS_PREFIX + "junk.tmp"], "a stray is left alone"


def test_an_unreadable_lock_of_a_newer_version_conflicts_until_removed_by_hand(
    store: MemoryStore, clock: Clock
) -> None:
    store.put(LOCKS_PREFIX + "ab" * 32, b'{"version": 2, "holder": {"node": "db1"}}')
    with pytest.raises(RepositoryLocked) as caught:
        locker(store, clock, 1).acquire(exclusive=False, operation="backup")
    assert "version 2" in caught.value.message
    assert "--remove-all" in (caught.value.hint or "")
    assert locker(store, clock, 1).remove_stale() == []
    assert len(locker(store, clock, 1).remove_all()) == 1
    locker(store, clock, 1).acquire(exclusive=False, operation="backup").release()


def test_waiting_for_a_lock_succeeds_when_it_is_released(store: MemoryStore) -> None:
    other = Locker(store, pid=1, machine="m2", refresh_every=None)
    held = other.acquire(exclusive=True, operation="prune")
    timer = threading.Timer(0.3, held.release)
    timer.start()
    started = time.monotonic()
    mine = Locker(store, refresh_every=None).acquire(exclusive=False, operation="backup", wait=5)
    assert 0.2 < time.monotonic() - started < 5
    mine.release()
    timer.join()


def test_the_heartbeat_refreshes_the_lock(store: MemoryStore) -> None:
    held = Locker(store, refresh_every=timedelta(seconds=0.05)).acquire(
        exclusive=False, operation="backup"
    )
    first = parse_lock(held.info.id, store.get(held.info.key)).time
    deadline = time.monotonic() + 5
    while parse_lock(held.info.id, store.get(held.info.key)).time == first:
        assert time.monotonic() < deadline, "the heartbeat never refreshed the lock"
        time.sleep(0.02)
    held.release()
    assert lock_keys(store) == []


def test_real_process_identity_tells_live_from_dead(store: MemoryStore) -> None:
    gone = os.fork()
    if gone == 0:
        os._exit(0)
    os.waitpid(gone, 0)
    Locker(store, pid=os.getppid(), refresh_every=None).acquire(exclusive=False, operation="backup")
    Locker(store, pid=gone, refresh_every=None).acquire(exclusive=False, operation="backup")
    stale = {s.info.pid: s.stale for s in Locker(store).locks() if s.info}
    assert stale[gone] is not None and "is gone" in stale[gone]
    assert stale[os.getppid()] is None
    assert machine_id().startswith(os.uname().nodename)


def test_repository_operations_respect_locks(store: MemoryStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x" * 1000)
    repo = Repository.init(store, "pw", kdf=KdfParams(n=1 << 10))
    other = Locker(store, pid=1, machine="elsewhere", refresh_every=None)
    pruning = other.acquire(exclusive=True, operation="prune")
    with pytest.raises(RepositoryLocked, match="backup cannot start"):
        repo.backup([src])
    assert repo.snapshots() == []
    pruning.release()
    snapshot = repo.backup([src])
    backing_up = other.acquire(exclusive=False, operation="backup")
    with pytest.raises(RepositoryLocked, match="prune cannot start"):
        repo.prune()
    repo.restore(snapshot.id, tmp_path / "out")
    assert (tmp_path / "out" / str(src).lstrip("/") / "f").read_bytes() == b"x" * 1000
    assert repo.check().ok
    backing_up.release()
    assert lock_keys(store) == [], "every operation released its lock"
