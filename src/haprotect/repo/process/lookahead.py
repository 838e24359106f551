"""Items produced by a thread of their own, ahead of the one that uses them.

The backup's walk is mostly system calls (``lstat``, ``listxattr``) that
run while the backup works on the entries before them. It starts before the
backup can use its entries (the key is still being derived): until the
first batch is taken, the walk may run further ahead than afterwards.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Lookahead(Generic[T]):
    """``items``, produced by a thread up to ``depth`` batches ahead of their use.

    Before the first batch is taken it may be ``head_start`` batches ahead.
    Take its :meth:`batches` once; :meth:`close` (or leaving the ``with``
    block) stops the thread, and an exception the items raise is raised
    after the items before it.
    """

    def __init__(
        self,
        items: Iterable[T],
        *,
        batch: int = 128,
        depth: int = 16,
        head_start: int = 16,
        name: str = "haprotect-lookahead",
    ) -> None:
        self._items = items
        self._batch = batch
        self._depth = depth
        self._limit = max(depth, head_start)
        self._ready: deque[list[T]] = deque()
        self._changed = threading.Condition()
        self._finished = False
        self._stopped = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def __enter__(self) -> Lookahead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batches(self) -> Iterator[list[T]]:
        """The items, in the lists they were produced in (call once)."""
        while True:
            with self._changed:
                while not self._ready and not self._finished:
                    self._changed.wait()
                self._limit = self._depth
                if self._ready:
                    got = self._ready.popleft()
                    self._changed.notify_all()
                elif self._error is not None:
                    raise self._error
                else:
                    return
            yield got

    def close(self) -> None:
        with self._changed:
            self._stopped = True
            self._ready.clear()
            self._changed.notify_all()
        self._thread.join()

    def _produce(self) -> None:
        chunk: list[T] = []
        try:
            for item in self._items:
                chunk.append(item)
                if len(chunk) >= self._batch:
                    if not self._put(chunk):
                        return
                    chunk = []
        except BaseException as exc:
            self._error = exc
        finally:
            if chunk:
                self._put(chunk)
            with self._changed:
                self._finished = True
                self._changed.notify_all()

    def _put(self, chunk: list[T]) -> bool:
        with self._changed:
            while len(self._ready) >= self._limit and not self._stopped:
                self._changed.wait()
            if self._stopped:
                return False
            self._ready.append(chunk)
            self._changed.notify_all()
            return True
