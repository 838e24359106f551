"""Attempts with exponential backoff, for targets whose failure may pass (a restart, a 503).

The sleep is injected: tests count the waits instead of sleeping them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class Retry(Exception):
    """Raised by an attempt whose failure is worth another attempt; its message says why."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """``attempts`` in all; the waits between them start at ``first`` and double up to ``most``."""

    attempts: int = 4
    first: float = 1.0
    most: float = 30.0

    def waits(self) -> list[float]:
        return [min(self.first * 2**n, self.most) for n in range(self.attempts - 1)]


def attempt(
    action: Callable[[], T], backoff: Backoff, sleep: Callable[[float], None] = time.sleep
) -> T:
    """``action()``, again after each :class:`Retry` it raises, waiting as ``backoff`` says.

    The last attempt's :class:`Retry` is raised; any other exception at once.
    """
    for wait in backoff.waits():
        try:
            return action()
        except Retry:
            sleep(wait)
    return action()
