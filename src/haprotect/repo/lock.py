"""Repository locks: who is using a repository, so prune never pulls data from under a backup.

Terms:

lock
    A small plain JSON blob ``locks/<64 hex>`` naming the process that holds
    it (host, user, pid), the operation, whether it is exclusive, and when it
    was last refreshed. Locks hold no secret, so they are not encrypted (the
    key files already show host and user names).
shared, exclusive
    Shared locks (backup, restore, check, forget) coexist: several hosts can
    back up into one repository at once. An exclusive lock (prune) excludes
    every other lock.
stale
    A lock not refreshed for ``stale_after`` (30 minutes), or one whose
    process is gone: same machine (host name, boot id and pid namespace all
    equal) and its pid is dead or now belongs to a younger process. A stale
    lock conflicts with nothing; whoever meets it removes it with a warning.
unreadable
    A lock blob that cannot be parsed (damaged, truncated, garbage). It
    conflicts with nothing and is not removed by whoever meets it (it may
    be a live holder's lock damaged in the store; the holder rewrites it at
    its next refresh); ``unlock`` removes it. Except a JSON object whose
    ``version`` is above this haprotect's: that may be a newer writer's
    lock, so it conflicts with every lock and only ``unlock --remove-all``
    removes it. A blob under ``locks/`` whose name is no blob id is no lock
    at all (:mod:`haprotect.repo.format.names`): ignored, and named by ``check``.
heartbeat
    A thread that rewrites the held lock with the current time every
    ``refresh_every`` (5 minutes). If it finds its lock gone, or the holder
    was frozen for so long that others may have found the lock stale, the
    lock is *lost*: :meth:`HeldLock.check` raises, and every write through
    :class:`GuardedStore` fails, so a process that lost its lock stops
    before it stores anything that a prune might have already judged garbage.

Taking a lock writes it first and lists the others second; on a conflict it
deletes its own and retries until ``wait`` runs out. Of two processes racing
for conflicting locks at least one sees the other, because each lists only
after its own lock is stored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from haprotect.redact import display_url
from haprotect.repo.errors import LockLost, RepositoryLocked
from haprotect.repo.format.names import blob_ids
from haprotect.repo.lockfile import (
    LOCKS_PREFIX,
    LockInfo,
    NewerLock,
    machine_id,
    parse_lock,
    process_start,
    username,
)
from haprotect.storage.base import BlobInfo, BlobNotFound, BlobStore, StorageError
from haprotect.storage.wrappers import StoreWrapper

STALE_AFTER = timedelta(minutes=30)
REFRESH_EVERY = timedelta(minutes=5)
_MAX_RETRY_DELAY = 10.0

log = logging.getLogger("haprotect.repo")

Clock = Callable[[], datetime]
ProcessStart = Callable[[int], int | None]
R = TypeVar("R")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LockStatus:
    """One lock as found: its content (None if unreadable) and why it is stale, if it is."""

    id: str
    info: LockInfo | None
    stale: str | None = None
    problem: str | None = None
    newer: bool = False
    """Unreadable, but of a newer version: it conflicts with everything."""

    @property
    def junk(self) -> bool:
        """Unreadable and not of a newer version: it blocks nothing."""
        return self.info is None and not self.newer

    @property
    def key(self) -> str:
        return LOCKS_PREFIX + self.id

    def describe(self) -> str:
        what = self.info.describe() if self.info is not None else f"lock {self.id[:8]}"
        if self.problem:
            return f"{what}: {self.problem}"
        return f"{what}: stale, {self.stale}" if self.stale else what


class Locker:
    """Takes, lists and removes the locks of one repository; clock and processes injectable."""

    def __init__(
        self,
        store: BlobStore,
        *,
        clock: Clock = utc_now,
        stale_after: timedelta = STALE_AFTER,
        refresh_every: timedelta | None = REFRESH_EVERY,
        host: str | None = None,
        pid: int | None = None,
        machine: str | None = None,
        process: ProcessStart = process_start,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.clock = clock
        self.stale_after = stale_after
        self.refresh_every = refresh_every
        self.host = host or socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self.machine = machine if machine is not None else machine_id()
        self._process = process
        self._sleep = sleep

    def stale_reason(self, info: LockInfo, now: datetime | None = None) -> str | None:
        age = (now or self.clock()) - info.time
        if age > self.stale_after:
            return f"not refreshed for {_span(age)} (stale after {_span(self.stale_after)})"
        if not info.machine or info.machine != self.machine or info.pid == self.pid:
            return None
        started = self._process(info.pid)
        if started is None:
            return f"process {info.pid} on {info.host} is gone"
        if info.process_start and started and started != info.process_start:
            return f"pid {info.pid} on {info.host} now belongs to another process"
        return None

    def locks(self) -> list[LockStatus]:
        """Every lock in the repository, with its staleness."""
        now = self.clock()
        found: list[LockStatus] = []
        for blob in blob_ids(self.store, LOCKS_PREFIX):
            status = self._status(blob, now)
            if status is not None:
                found.append(status)
        return sorted(found, key=_oldest_first)

    def _status(self, blob: BlobInfo, now: datetime) -> LockStatus | None:
        lock_id = blob.key.removeprefix(LOCKS_PREFIX)
        try:
            info = parse_lock(lock_id, self.store.get(blob.key))
        except BlobNotFound:
            return None
        except NewerLock as exc:
            return LockStatus(lock_id, None, problem=str(exc), newer=True)
        except ValueError as exc:
            return LockStatus(lock_id, None, problem=str(exc))
        return LockStatus(lock_id, info, self.stale_reason(info, now))

    def acquire(self, *, exclusive: bool, operation: str, wait: float = 0.0) -> HeldLock:
        """Take a lock, retrying for up to ``wait`` seconds while others conflict."""
        deadline = time.monotonic() + wait
        delay = 0.2
        removed: list[LockStatus] = []
        while True:
            held = self._write(exclusive, operation)
            try:
                conflicts = self._conflicts(held.info, removed)
            except BaseException:
                held.release()
                raise
            if not conflicts:
                held.removed_stale = tuple(removed)
                held.start_heartbeat()
                return held
            held.release()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _locked(display_url(self.store.url), operation, conflicts)
            self._sleep(min(remaining, delay * (0.5 + random.random())))
            delay = min(delay * 2, _MAX_RETRY_DELAY)

    def _write(self, exclusive: bool, operation: str) -> HeldLock:
        now = self.clock()
        info = LockInfo(
            id=os.urandom(32).hex(),
            exclusive=exclusive,
            operation=operation,
            host=self.host,
            username=username(),
            pid=self.pid,
            created=now,
            time=now,
            machine=self.machine,
            process_start=self._process(self.pid) if self.machine else None,
        )
        self.store.put(info.key, info.dump())
        return HeldLock(self, info)

    def _conflicts(self, mine: LockInfo, removed: list[LockStatus]) -> list[LockStatus]:
        conflicts: list[LockStatus] = []
        for status in self.locks():
            if status.id == mine.id:
                continue
            if status.stale is not None:
                if self._remove(status, "removed stale"):
                    removed.append(status)
                continue
            if status.junk:
                continue
            exclusive = status.info is None or status.info.exclusive
            if mine.exclusive or exclusive:
                conflicts.append(status)
        return conflicts

    def _remove(self, status: LockStatus, verb: str) -> bool:
        try:
            self.store.delete(status.key)
        except BlobNotFound:
            return False
        log.warning("%s %s", verb, status.describe())
        return True

    def remove_stale(self) -> list[LockStatus]:
        """Remove the stale and the unreadable locks (not those of a newer version)."""
        gone = [s for s in self.locks() if s.stale is not None or s.junk]
        return [s for s in gone if self._remove(s, "removed")]

    def remove_all(self) -> list[LockStatus]:
        """Remove every lock, live or not (only when no haprotect uses the repository)."""
        return [s for s in self.locks() if self._remove(s, "removed")]


class HeldLock:
    """A lock this process holds: refreshed by a heartbeat thread until released."""

    def __init__(self, locker: Locker, info: LockInfo) -> None:
        self.locker = locker
        self.info = info
        self.removed_stale: tuple[LockStatus, ...] = ()
        """Stale locks removed while taking this one."""
        self._refreshed = info.time
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def lost(self) -> str | None:
        """Why the lock is lost, or None while it is held."""
        if self._lost is not None:
            return self._lost
        locker = self.locker
        margin = locker.refresh_every or timedelta(0)
        limit = max(locker.stale_after - margin, locker.stale_after / 2)
        age = locker.clock() - self._refreshed
        if age > limit:
            return f"it was not refreshed for {_span(age)}; others may have found it stale"
        return None

    def check(self) -> None:
        """Raise :class:`LockLost` if the lock is lost."""
        reason = self.lost
        if reason is not None:
            raise LockLost(
                f"lost the {'exclusive' if self.info.exclusive else 'shared'} lock on "
                f"{display_url(self.locker.store.url)}: {reason}",
                hint="another process may have taken this one for dead; nothing more was "
                "written. Run `haprotect repo check`, then try again",
            )

    def refresh(self) -> None:
        """Rewrite the lock with the current time (the heartbeat does this)."""
        with self._mutex:
            if self._lost is not None or self._stop.is_set():
                return
            store = self.locker.store
            if not store.exists(self.info.key):
                self._lost = "it was removed by another process"
                log.warning("the lock on %s was removed by another process", display_url(store.url))
                return
            now = self.locker.clock()
            store.put(self.info.key, replace(self.info, time=now).dump())
            self._refreshed = now

    def start_heartbeat(self) -> None:
        every = self.locker.refresh_every
        if every is None or self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._beat, args=(every.total_seconds(),), name="haprotect-lock", daemon=True
        )
        self._thread.start()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except StorageError as exc:
                log.warning(
                    "could not refresh the lock on %s: %s", display_url(self.locker.store.url), exc
                )

    def release(self) -> None:
        """Stop the heartbeat and delete the lock (if it is still there)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._mutex, contextlib.suppress(BlobNotFound):
            self.locker.store.delete(self.info.key)


class GuardedStore(StoreWrapper):
    """The store, except that writes and deletes fail once ``lock`` is lost."""

    def __init__(self, inner: BlobStore, lock: HeldLock) -> None:
        super().__init__(inner)
        self.lock = lock

    def _run(self, op: str, key: str, call: Callable[[], R]) -> R:
        if op in ("put", "delete"):
            self.lock.check()
        return call()


def _oldest_first(status: LockStatus) -> tuple[datetime, str]:
    created = status.info.created if status.info is not None else datetime.min.replace(tzinfo=UTC)
    return created, status.id


def _locked(url: str, operation: str, conflicts: list[LockStatus]) -> RepositoryLocked:
    first = conflicts[0]
    more = f" and {len(conflicts) - 1} more" if len(conflicts) > 1 else ""
    hint = (
        "wait for it to finish (or use --retry-lock); if that process is gone, run "
        "`haprotect repo unlock URL`"
    )
    if first.info is None:
        hint = "if no haprotect uses the repository, run `haprotect repo unlock --remove-all URL`"
    return RepositoryLocked(
        f"repository {url} is locked, {operation} cannot start: {first.describe()}{more}",
        hint=hint,
    )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}"
