"""A fake of the running service for the API's tests: records what it is asked, on a real catalog.

``start_job`` queues a run in the catalog as the service would (unknown job:
CatalogNotFound); ``start_restore`` the same with a ``restore:`` job;
``cancel_run`` finishes the run failed (a final one: CatalogConflict).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from haprotect.api import RestoreRequest
from haprotect.catalog import Catalog, CatalogConflict, CatalogNotFound, RunStatus, Trigger

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FakeRpo:
    breached: bool = False
    due: datetime | None = T0
    deadline: datetime | None = T0 + timedelta(minutes=5)
    age: timedelta | None = timedelta(minutes=30)


@dataclass(frozen=True)
class FakeSetRef:
    id: str = "set-1"
    time: datetime = T0 - timedelta(minutes=30)


@dataclass(frozen=True)
class FakeLastRun:
    outcome: str = "completed"
    started: datetime = T0 - timedelta(minutes=31)
    duration: timedelta = timedelta(seconds=42)
    bytes_added: int = 1024


@dataclass(frozen=True)
class FakeDataSet:
    cluster: str = "shop"
    application: str = "shop"
    dataset: str = "fs_shop"
    job: str = "group:shop/shop"
    schedule: str = "0 * * * *"
    repository: str = "file:///srv/repo"
    rpo: FakeRpo = field(default_factory=FakeRpo)
    last_complete: FakeSetRef | None = field(default_factory=FakeSetRef)
    last_run: FakeLastRun | None = field(default_factory=FakeLastRun)
    next_run: datetime | None = T0 + timedelta(minutes=30)
    copies: tuple[str, ...] = ("file:///srv/repo",)
    copies_wanted: int = 2
    drift: tuple[str, ...] = ()


@dataclass(frozen=True)
class FakeStatus:
    at: datetime = T0
    datasets: tuple[FakeDataSet, ...] = (FakeDataSet(), FakeDataSet(dataset="db_shop"))


@dataclass(frozen=True)
class FakeJob:
    job: str = "group:shop/shop"
    schedule: str = "0 * * * *"
    datasets: tuple[str, ...] = ("shop/fs_shop", "shop/db_shop")
    rpo: FakeRpo = field(default_factory=FakeRpo)
    last_complete: FakeSetRef | None = None
    last_run: FakeLastRun | None = None
    next_run: datetime | None = None
    running: bool = False


class FakeControl:
    """The service as the API sees it, keeping its runs in a real catalog."""

    def __init__(self, catalog: Catalog, *, instant: bool = False) -> None:
        self.catalog = catalog
        #: runs started end at once (completed), so that no stream of their events waits
        self.instant = instant
        self.restores: list[tuple[RestoreRequest, str]] = []
        self.started: list[tuple[str, str]] = []
        self.job_list = (FakeJob(),)
        #: raised by ``status`` when set: the service failing
        self.failure: Exception | None = None

    def status(self) -> FakeStatus:
        if self.failure is not None:
            raise self.failure
        return FakeStatus()

    def jobs(self) -> Sequence[FakeJob]:
        return self.job_list

    def start_job(self, job: str, *, by: str) -> int:
        if job not in {j.job for j in self.job_list}:
            raise CatalogNotFound(f"no job {job!r}", hint="GET /api/v1/jobs lists them")
        self.started.append((job, by))
        run = self.catalog.queue_run(job, repository="file:///srv/repo", trigger=Trigger.MANUAL)
        return self._maybe_finish(run.id)

    def start_restore(self, request: RestoreRequest, *, by: str) -> int:
        self.restores.append((request, by))
        run = self.catalog.start_run(
            f"restore:{request.application}", repository="file:///srv/repo", trigger=Trigger.MANUAL
        )
        return self._maybe_finish(run.id)

    def _maybe_finish(self, run_id: int) -> int:
        if self.instant:
            self.catalog.finish_run(run_id, RunStatus.COMPLETED)
        return run_id

    def cancel_run(self, run_id: int, *, by: str) -> None:
        if self.catalog.run(run_id).status.final:
            raise CatalogConflict(f"run {run_id} has ended")
        self.catalog.finish_run(run_id, RunStatus.FAILED, error=f"cancelled by {by}")

    def metrics_text(self) -> bytes:
        return b"# TYPE haprotect_up gauge\nhaprotect_up 1\n"
