"""The service's own jobs beside the backups: prune, rotating checks, drift.

They are jobs of the same scheduler (keys ``prune:<repository>``,
``verify:<repository>``, ``drift:<policy>``), at low priority and under the
same per-repository limit, so a prune never runs beside a backup of the
same repository. Unlike a backup, a maintenance job that has never run
waits for its first fire: a service started for the first time backs up
at once but does not prune at once.

Verification reads every pack within ``verify_period_days``: each run reads
part *k* of *n* of the packs (by pack id, ``repo check --subset k/n``),
*n* being how many runs the schedule makes in the period, *k* rotating.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta

from haprotect.model.policy import Priority
from haprotect.service.config import ServiceConfig
from haprotect.service.cron import cron_schedule
from haprotect.service.jobs import Job

MAINTENANCE_KINDS = ("prune", "verify", "drift")


def maintenance_jobs(
    config: ServiceConfig, repositories: Iterable[str], policies: Iterable[str]
) -> tuple[Job, ...]:
    """The prune and verify jobs of each repository, the drift job of each policy."""
    jobs: list[Job] = []
    for url in sorted(set(repositories)):
        name = config.repository(url).name
        for kind, schedule in (
            ("prune", config.maintenance.prune),
            ("verify", config.maintenance.verify),
        ):
            jobs.append(_job(f"{kind}:{name}", kind, name, schedule, url))
    for policy in sorted(set(policies)):
        jobs.append(_job(f"drift:{policy}", "drift", policy, config.drift.schedule, ""))
    return tuple(jobs)


def _job(key: str, kind: str, name: str, schedule: str, repository: str) -> Job:
    return Job(
        key=key,
        kind=kind,
        cluster="",
        name=name,
        datasets=(),
        schedule=schedule,
        timezone="UTC",
        priority=Priority.LOW,
        repository=repository,
        nodes=(),
        reasons=(f"{kind} on the service's schedule {schedule}",),
    )


def verify_parts(schedule: str, period_days: int) -> int:
    """Into how many parts the packs are cut so that each is read within the period."""
    interval = cron_schedule(schedule, "UTC").mean_interval()
    runs = timedelta(days=period_days) / max(interval, timedelta(minutes=1))
    return max(1, math.floor(runs))


def verify_part(done: int, parts: int) -> int:
    """The part (1 to ``parts``) the next check reads, after ``done`` checks."""
    return done % parts + 1
