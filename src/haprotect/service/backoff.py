"""Retries of a failed run: exponential backoff, capped, a bounded number of times.

After the n-th failed attempt of one scheduled run, the next attempt waits
``base * factor ** (n - 1)``, at most ``cap``; after ``max_attempts``
attempts (the scheduled one included) the job waits for its next fire. A
retry never runs at or past the next fire: that fire's run takes its place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Backoff:
    """How failed runs are retried (the defaults: 1 min, 2 min, 4 min, 8 min, then wait)."""

    base: timedelta = timedelta(minutes=1)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 5

    def __post_init__(self) -> None:
        if self.base <= timedelta(0) or self.cap < self.base:
            raise ValueError("backoff: base must be positive and cap at least base")
        if self.factor < 1:
            raise ValueError("backoff: factor must be at least 1")
        if self.max_attempts < 1:
            raise ValueError("backoff: max_attempts must be at least 1")

    def delay(self, failures: int) -> timedelta | None:
        """The wait after ``failures`` failed attempts; None when no attempt is left."""
        if failures < 1:
            raise ValueError("backoff: a delay follows at least one failure")
        if failures >= self.max_attempts:
            return None
        seconds = self.base.total_seconds() * self.factor ** min(failures - 1, 64)
        return min(self.cap, timedelta(seconds=min(seconds, self.cap.total_seconds())))

    def delays(self) -> list[timedelta]:
        """Every wait between the attempts of one scheduled run, in order."""
        return [d for n in range(1, self.max_attempts) if (d := self.delay(n)) is not None]
