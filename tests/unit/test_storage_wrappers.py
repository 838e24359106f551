"""The wrappers: retry, concurrency limit, logging, and open_store's stack."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from haprotect.errors import UsageError
from haprotect.storage import backend_for, backends, open_store
from haprotect.storage.base import (
    BlobInfo,
    BlobNotFound,
    BlobStore,
    PermanentStorageError,
    TransientStorageError,
)
from haprotect.storage.memory import MemoryStore
from haprotect.storage.wrappers import (
    ConcurrencyLimitedStore,
    LoggingStore,
    RetryingStore,
    StoreWrapper,
)
from haprotect.testing.storage_conformance import BlobStoreConformance


class FlakyStore(MemoryStore):
    """A MemoryStore whose next operations fail with the queued errors."""

    def __init__(self) -> None:
        super().__init__("flaky://")
        self.failures: list[Exception] = []
        self.calls = 0

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)

    def put(self, key: str, data: bytes) -> None:
        self._maybe_fail()
        super().put(key, data)

    def get(self, key: str) -> bytes:
        self._maybe_fail()
        return super().get(key)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        self._maybe_fail()
        return super().list(prefix)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def retrying(
    inner: BlobStore,
    clock: FakeClock,
    *,
    attempts: int = 6,
    base_delay: float = 0.2,
    max_delay: float = 10.0,
    deadline: float = 120.0,
) -> RetryingStore:
    """A RetryingStore on a fake clock that always draws the longest delay."""
    return RetryingStore(
        inner,
        attempts=attempts,
        base_delay=base_delay,
        max_delay=max_delay,
        deadline=deadline,
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 1.0,
    )


def transient(n: int) -> list[Exception]:
    return [TransientStorageError(f"503 number {i}") for i in range(n)]


def test_retries_transient_errors_with_growing_delays() -> None:
    inner, clock = FlakyStore(), FakeClock()
    inner.put("k", b"v")
    inner.failures = transient(3)
    store = retrying(inner, clock, base_delay=0.5)
    assert store.get("k") == b"v"
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_delays_are_capped_and_jittered() -> None:
    inner, clock = FlakyStore(), FakeClock()
    inner.failures = transient(4)
    draws = iter([0.5, 0.25, 1.0, 0.0])
    store = RetryingStore(
        inner,
        base_delay=1.0,
        max_delay=3.0,
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: next(draws),
    )
    store.put("k", b"v")
    assert clock.sleeps == [0.5, 0.5, 3.0, 0.0]


@pytest.mark.parametrize(
    "error", [PermanentStorageError("403"), BlobNotFound("gone"), ValueError("bug")]
)
def test_does_not_retry_other_errors(error: Exception) -> None:
    inner, clock = FlakyStore(), FakeClock()
    inner.failures = [error]
    with pytest.raises(type(error)):
        retrying(inner, clock).get("k")
    assert inner.calls == 1
    assert clock.sleeps == []


def test_gives_up_after_the_attempts() -> None:
    inner, clock = FlakyStore(), FakeClock()
    inner.failures = transient(10)
    with pytest.raises(TransientStorageError, match="number 3") as caught:
        RetryingStore(inner, attempts=4, sleep=clock.sleep, clock=clock).put("k", b"v")
    assert inner.calls == 4
    assert len(clock.sleeps) == 3
    assert any("gave up after 4 attempts" in note for note in caught.value.__notes__)


def test_gives_up_at_the_deadline() -> None:
    inner, clock = FlakyStore(), FakeClock()
    inner.failures = transient(10)
    store = retrying(inner, clock, attempts=100, base_delay=1.0, max_delay=4.0, deadline=10.0)
    with pytest.raises(TransientStorageError):
        store.put("k", b"v")
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert clock.now <= 10.0


def test_a_failed_listing_is_listed_again_whole() -> None:
    inner, clock = FlakyStore(), FakeClock()
    inner.put("a", b"1")
    inner.put("b", b"2")
    inner.failures = transient(1)
    assert sorted(i.key for i in retrying(inner, clock).list()) == ["a", "b"]


def test_retries_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    inner, clock = FlakyStore(), FakeClock()
    inner.failures = transient(1)
    with caplog.at_level(logging.WARNING, logger="haprotect.storage"):
        retrying(inner, clock).put("data/k", b"v")
    assert "put data/k failed (attempt 1 of 6)" in caplog.text


class SlowStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.peak = 0
        self._count = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        with self._count:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.01)
        super().put(key, data)
        with self._count:
            self.active -= 1


def test_concurrency_limit_holds_across_threads() -> None:
    inner = SlowStore()
    store = ConcurrencyLimitedStore(inner, 3)
    threads = [threading.Thread(target=store.put, args=(f"k{n}", b"v")) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert inner.peak == 3
    assert len(list(store.list())) == 12


def test_wrappers_refuse_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        ConcurrencyLimitedStore(MemoryStore(), 0)
    with pytest.raises(ValueError):
        RetryingStore(MemoryStore(), attempts=0)


def test_logging_store_logs_each_operation(caplog: pytest.LogCaptureFixture) -> None:
    store = LoggingStore(MemoryStore("memory://log/"))
    with caplog.at_level(logging.DEBUG, logger="haprotect.storage"):
        store.put("k", b"abc")
        assert store.get("k") == b"abc"
        with pytest.raises(BlobNotFound):
            store.get("missing")
    assert "memory://log/ get k -> 3 bytes" in caplog.text
    assert "get missing failed" in caplog.text
    assert "BlobNotFound" in caplog.text


def test_open_store_stacks_retry_outside_the_limit(tmp_path: Path) -> None:
    store = open_store(str(tmp_path), concurrency=2)
    assert isinstance(store, RetryingStore)
    assert isinstance(store.inner, ConcurrencyLimitedStore)
    assert store.inner.limit == 2
    unretried = open_store(str(tmp_path), retry=False)
    assert isinstance(unretried, ConcurrencyLimitedStore)


def test_unknown_schemes_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="no storage backend for ftp://"):
        open_store("ftp://host/repo")


def test_builtin_backends_are_registered() -> None:
    backend_for("memory://")
    assert {"file", "memory", "s3"} <= set(backends.names())


class TestWrappedStoreConformance(BlobStoreConformance):
    """The full stack is still a conforming BlobStore."""

    reopen_by_url = False

    @pytest.fixture
    def store(self) -> BlobStore:
        return LoggingStore(RetryingStore(ConcurrencyLimitedStore(MemoryStore(), 4)))


def test_store_wrapper_forwards_everything() -> None:
    inner = MemoryStore("memory://inner/")
    store = StoreWrapper(inner)
    store.put("a/b", b"123456")
    assert store.url == "memory://inner/"
    assert store.get_range("a/b", 1, 2) == b"23"
    assert store.exists("a/b")
    store.delete("a/b")
    assert not inner.exists("a/b")
