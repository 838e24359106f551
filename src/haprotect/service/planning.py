"""The runs a window of time holds: what ``haprotect schedule`` shows.

A plan lists every run that would start in ``[start, end)`` by the jobs'
schedules, ignoring the limits: how long each run takes is not known until
runs are recorded, so the limits' effect (a start delayed while a
repository or node is busy) cannot be foreseen honestly; the plan shows
when each job is due, which is what the limits then order. Retries are not
planned either (they follow failures), except one already pending in a
job's state.

A job with no state is taken as up to date at ``start``: its first run is
its first fire. A job whose state says it is behind starts at ``start``
with one catch-up run, as the service would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from haprotect.service.backoff import Backoff
from haprotect.service.cron import cron_schedule
from haprotect.service.jobs import Job
from haprotect.service.schedule import JobState, next_start


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """One run a plan expects: the job, when, and which kind of start."""

    job: Job
    at: datetime
    kind: str = "scheduled"  # "scheduled", "catch-up" or "retry"


def plan_window(
    jobs: Iterable[Job],
    start: datetime,
    end: datetime,
    states: Mapping[str, JobState] | None = None,
    backoff: Backoff | None = None,
) -> list[PlannedRun]:
    """Every run of ``jobs`` that would start in ``[start, end)``, by time, then priority."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("a plan's window must be given in aware times")
    states = states or {}
    backoff = backoff or Backoff()
    fires: dict[tuple[str, str], list[datetime]] = {}
    runs: list[PlannedRun] = []
    for job in jobs:
        zone_key = (job.schedule, job.timezone)
        if zone_key not in fires:
            fires[zone_key] = cron_schedule(job.schedule, job.timezone).fires_between(start, end)
        timeline = fires[zone_key]
        state = states.get(job.key)
        if state is not None and not state.running:
            upcoming = next_start(job, state, start, backoff)
            if upcoming.due(start):
                kind = "catch-up" if upcoming.catch_up or upcoming.at < start else "scheduled"
                runs.append(PlannedRun(job, start, "retry" if upcoming.retry else kind))
                runs.extend(PlannedRun(job, f) for f in timeline if f > start)
                continue
            if upcoming.retry and upcoming.at < end:
                runs.append(PlannedRun(job, upcoming.at, "retry"))
        runs.extend(PlannedRun(job, f) for f in timeline)
    runs.sort(key=lambda r: (r.at, r.job.rank, r.job.key))
    return runs
