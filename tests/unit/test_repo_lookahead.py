"""The walk's lookahead: how far it runs ahead, errors, and stopping it."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from haprotect.repo.process.lookahead import Lookahead


def every(ahead: Lookahead[int]) -> Iterator[int]:
    """The items of ``ahead``, out of their batches."""
    return itertools.chain.from_iterable(ahead.batches())


class Counted:
    """Counts the items taken from ``items``, and waits for the count to settle."""

    def __init__(self, items: Iterator[int]) -> None:
        self._items = items
        self.taken = 0

    def __iter__(self) -> Iterator[int]:
        for item in self._items:
            self.taken += 1
            yield item

    def settled(self) -> int:
        last, deadline = -1, time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if self.taken == last:
                return last
            last = self.taken
        raise AssertionError("the producer never stopped")


def test_it_runs_a_head_start_ahead_then_only_its_depth() -> None:
    source = Counted(itertools.count())
    with Lookahead(source, batch=10, depth=2, head_start=5) as ahead:
        # five batches queued, the sixth made and waiting to be queued
        assert source.settled() == 60
        items = every(ahead)
        assert [next(items) for _ in range(10)] == list(range(10))
        # one batch taken: four left queued, above the depth of two
        assert source.settled() == 60
        for _ in range(30):
            next(items)
        assert source.settled() == 60 + 10, "refilled to the depth only"
        assert next(items) == 40


def test_everything_comes_in_order_then_the_error() -> None:
    def failing() -> Iterator[int]:
        yield from range(25)
        raise OSError("disk gone")

    got: list[int] = []
    with Lookahead(failing(), batch=10) as ahead, pytest.raises(OSError, match="disk gone"):
        for item in every(ahead):
            got.append(item)
    assert got == list(range(25))


def test_close_stops_an_endless_producer() -> None:
    before = threading.active_count()
    ahead = Lookahead(itertools.count(), batch=10, depth=2)
    assert next(every(ahead)) == 0
    ahead.close()
    assert threading.active_count() == before


def test_an_empty_source_ends_at_once() -> None:
    with Lookahead(iter(()), batch=4) as ahead:
        assert list(every(ahead)) == []
