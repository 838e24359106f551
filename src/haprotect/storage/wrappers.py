"""Cross-cutting behaviour around any blob store: retry, concurrency, logging.

Each wrapper is itself a :class:`BlobStore` and sends every operation
through one hook, :meth:`StoreWrapper._run`, so a new concern is one small
subclass. ``list`` is materialised inside the hook: an iterator that fails
half-way could neither be retried nor counted against a concurrency limit.
"""

from __future__ import annotations

import logging
import mmap
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from haprotect.redact import display_url
from haprotect.storage.base import (
    BlobInfo,
    BlobStore,
    StagedBlob,
    StorageError,
    StoreFeature,
    TransientStorageError,
    get_range_into,
    put_buffer,
    remove_leftovers,
    stage,
)

R = TypeVar("R")

log = logging.getLogger("haprotect.storage")


class StoreWrapper:
    """A blob store that forwards every operation to ``inner`` through ``_run``."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner

    @property
    def url(self) -> str:
        return self.inner.url

    @property
    def features(self) -> frozenset[StoreFeature]:
        """The inner store's: each feature method runs it through the hook."""
        return self.inner.features

    def _run(self, op: str, key: str, call: Callable[[], R]) -> R:
        return call()

    def put(self, key: str, data: bytes) -> None:
        self._run("put", key, lambda: self.inner.put(key, data))

    def put_buffer(self, key: str, buffer: mmap.mmap, length: int) -> None:
        """See :func:`haprotect.storage.base.put_buffer`; a ``put`` for the hook."""
        self._run("put", key, lambda: put_buffer(self.inner, key, buffer, length))

    def stage(self, prefix: str) -> StagedBlob | None:
        """See :func:`haprotect.storage.base.stage`; its ``commit`` is a ``put`` for the hook."""
        staged = stage(self.inner, prefix)
        return None if staged is None else _WrappedStaged(self, staged)

    def remove_leftovers(self) -> int:
        """See :func:`haprotect.storage.base.remove_leftovers`; a ``delete`` for the hook."""
        return self._run("delete", "", lambda: remove_leftovers(self.inner))

    def get(self, key: str) -> bytes:
        return self._run("get", key, lambda: self.inner.get(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self._run("get_range", key, lambda: self.inner.get_range(key, offset, length))

    def get_range_into(self, key: str, offset: int, length: int, buffer: mmap.mmap) -> memoryview:
        """See :func:`haprotect.storage.base.get_range_into`; a ``get_range`` for the hook."""
        return self._run(
            "get_range", key, lambda: get_range_into(self.inner, key, offset, length, buffer)
        )

    def exists(self, key: str) -> bool:
        return self._run("exists", key, lambda: self.inner.exists(key))

    def delete(self, key: str) -> None:
        self._run("delete", key, lambda: self.inner.delete(key))

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        return iter(self._run("list", prefix, lambda: list(self.inner.list(prefix))))


class _WrappedStaged:
    """A staged blob of the store inside a wrapper: committing runs through its hook."""

    def __init__(self, wrapper: StoreWrapper, inner: StagedBlob) -> None:
        self._wrapper = wrapper
        self._inner = inner

    def write(self, buffer: mmap.mmap, length: int) -> None:
        self._inner.write(buffer, length)

    def commit(self, key: str) -> None:
        self._wrapper._run("put", key, lambda: self._inner.commit(key))

    def abort(self) -> None:
        self._inner.abort()


class RetryingStore(StoreWrapper):
    """Retry :class:`TransientStorageError` with exponential backoff and full jitter.

    The n-th retry waits a random time in ``[0, min(max_delay, base_delay *
    2**n)]``. It gives up, re-raising the last error, after ``attempts`` tries
    or when the next wait would pass ``deadline`` seconds since the first
    try. Not-found and permanent errors pass through at once. ``sleep``,
    ``clock`` and ``jitter`` are injectable so tests need not wait.
    """

    def __init__(
        self,
        inner: BlobStore,
        *,
        attempts: int = 6,
        base_delay: float = 0.2,
        max_delay: float = 10.0,
        deadline: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        super().__init__(inner)
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.deadline = deadline
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter

    def _run(self, op: str, key: str, call: Callable[[], R]) -> R:
        start = self._clock()
        attempt = 1
        while True:
            try:
                return call()
            except TransientStorageError as exc:
                delay = self._jitter() * min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                elapsed = self._clock() - start
                if attempt >= self.attempts or elapsed + delay > self.deadline:
                    exc.add_note(f"gave up after {attempt} attempts in {elapsed:.1f}s")
                    raise
                log.warning(
                    "%s %s failed (attempt %d of %d), retrying in %.2fs: %s",
                    op,
                    key,
                    attempt,
                    self.attempts,
                    delay,
                    exc,
                )
                self._sleep(delay)
                attempt += 1


class ConcurrencyLimitedStore(StoreWrapper):
    """At most ``limit`` operations on ``inner`` at once, across threads."""

    def __init__(self, inner: BlobStore, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        super().__init__(inner)
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    def _run(self, op: str, key: str, call: Callable[[], R]) -> R:
        with self._slots:
            return call()


class LoggingStore(StoreWrapper):
    """Log every operation, its duration and its outcome at debug level."""

    def __init__(self, inner: BlobStore, logger: logging.Logger | None = None) -> None:
        super().__init__(inner)
        self._log = logger or log

    def _run(self, op: str, key: str, call: Callable[[], R]) -> R:
        start = time.perf_counter()
        try:
            result = call()
        except StorageError as exc:
            self._log.debug(
                "%s %s %s failed after %.3fs: %s: %s",
                display_url(self.url),
                op,
                key,
                time.perf_counter() - start,
                type(exc).__name__,
                exc,
            )
            raise
        self._log.debug(
            "%s %s %s%s in %.3fs",
            display_url(self.url),
            op,
            key,
            _describe(result),
            time.perf_counter() - start,
        )
        return result


def _describe(result: object) -> str:
    if isinstance(result, bytes):
        return f" -> {len(result)} bytes"
    if isinstance(result, list):
        return f" -> {len(result)} blobs"
    if isinstance(result, bool):
        return f" -> {result}"
    return ""
