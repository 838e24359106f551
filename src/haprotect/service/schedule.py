"""When a job is due: its schedule, the start of its last run, retries, and now.

Terms:

fire
    A time the job's cron schedule names (in its time zone, see
    :mod:`haprotect.service.cron`).
due
    A job is due once a fire has passed since its last run started. However
    many fires passed (the service was down for three hours, an hourly job
    missed three), it is due once: one catch-up run stands for all of them,
    and its start counts for every fire before it. A job that never ran is
    due at once: its data has no backup yet.
retry
    A failed run is tried again after :class:`~haprotect.service.backoff.Backoff`'s
    delay, counted from the end of the failed attempt, unless the next fire
    comes first (its run takes the retry's place).

The state these decisions take, :class:`JobState`, is plain data the
catalog keeps; :func:`started` and :func:`finished` are its transitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from haprotect.service.backoff import Backoff
from haprotect.service.cron import cron_schedule
from haprotect.service.jobs import Job


@dataclass(frozen=True, slots=True)
class JobState:
    """A job's history, as far as scheduling needs it.

    ``failures`` counts the failed attempts of the latest scheduled run and
    its retries (0 once one succeeds, and again when a scheduled run starts).
    """

    last_start: datetime | None = None
    last_end: datetime | None = None
    failures: int = 0

    @property
    def running(self) -> bool:
        """Whether the latest run started and has not ended."""
        return self.last_start is not None and (
            self.last_end is None or self.last_end < self.last_start
        )


@dataclass(frozen=True, slots=True)
class Next:
    """A job's next start: when, which fire it stands for, and why.

    ``since`` is how long the job has been waiting (its first missed fire,
    or the time its retry became due): the earlier, the more overdue.
    ``attempt`` is 1 for a scheduled run, 2 and more for its retries.
    ``catch_up`` says that several fires passed and this one run stands for
    them all.
    """

    at: datetime
    fire: datetime | None
    since: datetime
    attempt: int = 1
    catch_up: bool = False

    def due(self, now: datetime) -> bool:
        return self.at <= now

    @property
    def retry(self) -> bool:
        return self.attempt > 1

    def describe(self) -> str:
        if self.retry:
            return f"retry (attempt {self.attempt})"
        if self.catch_up and self.fire is not None:
            return (
                f"catch-up: fires from {self.since.isoformat()} to {self.fire.isoformat()} "
                "were missed; one run stands for them"
            )
        return "scheduled"


def next_start(job: Job, state: JobState, now: datetime, backoff: Backoff) -> Next:
    """When ``job`` starts next, given its ``state``; due when ``at`` is not after ``now``."""
    schedule = cron_schedule(job.schedule, job.timezone)
    if state.last_start is None:
        latest = schedule.latest_at_or_before(now)
        if latest is None:
            following = schedule.next_after(now)
            return Next(at=following, fire=following, since=following)
        return Next(at=latest, fire=latest, since=latest)
    following = schedule.next_after(state.last_start)
    if following <= now:
        latest = schedule.latest_at_or_before(now)
        assert latest is not None  # following is one
        return Next(at=following, fire=latest, since=following, catch_up=latest != following)
    if state.failures and state.last_end is not None and not state.running:
        delay = backoff.delay(state.failures)
        if delay is not None and state.last_end + delay < following:
            at = state.last_end + delay
            fire = schedule.latest_at_or_before(state.last_start)
            return Next(at=at, fire=fire, since=at, attempt=state.failures + 1)
    return Next(at=following, fire=following, since=following)


def started(state: JobState, at: datetime, *, retry: bool) -> JobState:
    """The state once a run starts at ``at`` (a scheduled run starts its attempts afresh)."""
    return JobState(last_start=at, last_end=state.last_end, failures=state.failures if retry else 0)


def finished(state: JobState, at: datetime, *, ok: bool) -> JobState:
    """The state once the running attempt ends at ``at``, successful or not."""
    return JobState(
        last_start=state.last_start, last_end=at, failures=0 if ok else state.failures + 1
    )
