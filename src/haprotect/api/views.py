"""The service's status views (see :mod:`haprotect.api.control`) as response bodies."""

from __future__ import annotations

from haprotect.api import schemas
from haprotect.api.control import (
    DataSetStatusView,
    JobView,
    LastRunView,
    RpoView,
    SetRefView,
    StatusView,
)


def rpo(view: RpoView) -> schemas.Rpo:
    age = None if view.age is None else view.age.total_seconds()
    return schemas.Rpo(
        breached=view.breached, due=view.due, deadline=view.deadline, age_seconds=age
    )


def set_ref(view: SetRefView | None) -> schemas.SetRef | None:
    return None if view is None else schemas.SetRef(id=view.id, time=view.time)


def last_run(view: LastRunView | None) -> schemas.LastRun | None:
    if view is None:
        return None
    return schemas.LastRun(
        outcome=str(view.outcome),
        started=view.started,
        duration_seconds=view.duration.total_seconds(),
        bytes_added=view.bytes_added,
    )


def dataset(view: DataSetStatusView) -> schemas.DataSetStatus:
    return schemas.DataSetStatus(
        cluster=view.cluster,
        application=view.application,
        dataset=view.dataset,
        job=view.job,
        schedule=view.schedule,
        repository=view.repository,
        rpo=rpo(view.rpo),
        last_complete=set_ref(view.last_complete),
        last_run=last_run(view.last_run),
        next_run=view.next_run,
        copies=list(view.copies),
        copies_wanted=view.copies_wanted,
        drift=list(view.drift),
    )


def status(view: StatusView) -> schemas.Status:
    return schemas.Status(at=view.at, datasets=[dataset(d) for d in view.datasets])


def job(view: JobView) -> schemas.Job:
    return schemas.Job(
        job=view.job,
        schedule=view.schedule,
        datasets=list(view.datasets),
        rpo=rpo(view.rpo),
        last_complete=set_ref(view.last_complete),
        last_run=last_run(view.last_run),
        next_run=view.next_run,
        running=view.running,
    )
