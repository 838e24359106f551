"""The protection status the service reports: from its jobs, the catalog and the clock.

One :class:`~haprotect.service.status.Overview` serves ``haprotect status``,
the API's status and ``/metrics``. A data set's RPO is measured from its
job's last complete set (a group's set protects every data set in it), or,
when it has none yet, from the approval of the policy version that runs it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from haprotect.catalog import Catalog
from haprotect.catalog.records import Run, RunStatus, SetRecord
from haprotect.model.policy import Item
from haprotect.redact import display_url
from haprotect.service.jobs import Job
from haprotect.service.status import (
    DataSetStatus,
    JobStatus,
    LastRun,
    Overview,
    RunOutcome,
    SetRef,
    rpo_of,
)

#: How many runs of a job are counted by outcome.
_COUNTED_RUNS = 1000

_OUTCOMES = {
    RunStatus.COMPLETED: RunOutcome.COMPLETED,
    RunStatus.PARTIALLY_FAILED: RunOutcome.PARTIALLY_FAILED,
    RunStatus.FAILED: RunOutcome.FAILED,
    RunStatus.INTERRUPTED: RunOutcome.INTERRUPTED,
}


def build_overview(
    catalog: Catalog,
    jobs: Sequence[tuple[Job, Sequence[Item], datetime | None]],
    *,
    now: datetime,
    next_runs: Mapping[str, datetime],
    running: frozenset[str] = frozenset(),
    drift: Mapping[str, Sequence[str]] | None = None,
    grace: timedelta | None = None,
    with_runs: bool = True,
) -> Overview:
    """The overview at ``now``; ``jobs`` are (job, its items, when its protection began).

    The sets are read in one query; the runs (the last one, the counts by
    outcome) one query per job, and only ``with_runs``: the RPO alone,
    looked at every minute, needs only the sets.
    """
    datasets: list[DataSetStatus] = []
    statuses: list[JobStatus] = []
    newest = _newest_complete(catalog.sets())
    for job, items, since in jobs:
        runs = catalog.runs(job=job.key, limit=_COUNTED_RUNS) if with_runs else []
        finished = [r for r in runs if r.status.final]
        last_run = _last_run(finished[0]) if finished else None
        last_set = newest.get((job.name, job.repository))
        last_complete = SetRef(last_set.set_id, last_set.taken_at) if last_set else None
        copies = _copies(last_set)
        notes = tuple((drift or {}).get(job.key, ()))
        zone = ZoneInfo(job.timezone)
        rpo = rpo_of(job.schedule, last_complete, now, since=since, grace=grace, tz=zone)
        statuses.append(
            JobStatus(
                job=job.key,
                schedule=job.schedule,
                datasets=tuple(f"{job.cluster}/{d}" for d in job.datasets),
                rpo=rpo,
                last_complete=last_complete,
                last_run=last_run,
                next_run=next_runs.get(job.key),
                running=job.key in running,
                runs=Counter(_OUTCOMES[r.status] for r in finished if r.status in _OUTCOMES),
            )
        )
        for item in items:
            datasets.append(
                DataSetStatus(
                    cluster=item.cluster,
                    application=job.name if job.kind == "group" else "",
                    dataset=item.dataset,
                    job=job.key,
                    schedule=job.schedule,
                    repository=display_url(job.repository),
                    rpo=rpo,
                    last_complete=last_complete,
                    last_run=last_run,
                    next_run=next_runs.get(job.key),
                    copies=copies,
                    copies_wanted=item.copies,
                    drift=notes,
                )
            )
    return Overview(at=now, datasets=tuple(datasets), jobs=tuple(statuses))


def _last_run(run: Run) -> LastRun:
    started = run.started_at or run.queued_at
    ended = run.finished_at or started
    return LastRun(
        outcome=_OUTCOMES.get(run.status, RunOutcome.FAILED),
        started=started,
        duration=ended - started,
        bytes_added=run.bytes_added or 0,
    )


def _newest_complete(records: Sequence[SetRecord]) -> dict[tuple[str, str], SetRecord]:
    """The newest complete set of each application in each repository (``records`` newest first)."""
    newest: dict[tuple[str, str], SetRecord] = {}
    for record in records:
        if record.complete:
            newest.setdefault((record.application, record.repository), record)
    return newest


def _copies(record: SetRecord | None) -> tuple[str, ...]:
    if record is None:
        return ()
    return (display_url(record.repository), *(display_url(t) for t in record.copied_to))
