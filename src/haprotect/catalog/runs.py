"""Runs of jobs and their events: queued, running, and how each ended."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from haprotect.catalog import convert
from haprotect.catalog.base import CatalogBase
from haprotect.catalog.errors import CatalogConflict, CatalogNotFound
from haprotect.catalog.models import RunEventRow, RunRow
from haprotect.catalog.records import Run, RunEvent, RunStatus, Trigger

INTERRUPTED = "the service stopped while the run was running"


class RunStore(CatalogBase):
    """The runs of the catalog and their events."""

    def queue_run(
        self,
        job: str,
        *,
        repository: str,
        trigger: Trigger,
        policy_version_id: int | None = None,
        attempt: int = 1,
    ) -> Run:
        """Record a run that waits for a free slot."""
        return self._new_run(job, repository, trigger, policy_version_id, attempt, None, False)

    def start_run(
        self,
        job: str,
        *,
        repository: str,
        trigger: Trigger,
        policy_version_id: int | None = None,
        attempt: int = 1,
        pid: int | None = None,
    ) -> Run:
        """Record a run that starts now."""
        return self._new_run(job, repository, trigger, policy_version_id, attempt, pid, True)

    def _new_run(
        self,
        job: str,
        repository: str,
        trigger: Trigger,
        policy_version_id: int | None,
        attempt: int,
        pid: int | None,
        running: bool,
    ) -> Run:
        now = self._clock()
        row = RunRow(
            job=job,
            policy_version_id=policy_version_id,
            repository=repository,
            trigger=Trigger(trigger),
            attempt=attempt,
            status=RunStatus.RUNNING if running else RunStatus.QUEUED,
            queued_at=now,
            started_at=now if running else None,
            pid=pid,
        )
        with self._transaction() as s:
            s.add(row)
            s.flush()
            return convert.run(row)

    def mark_running(self, run_id: int, *, pid: int | None = None) -> Run:
        """A queued run starts now (or a running run's child ``pid`` becomes known)."""
        with self._transaction() as s:
            row = self._run(s, run_id)
            if RunStatus(row.status).final:
                raise CatalogConflict(f"run {run_id} is {row.status}: it cannot start")
            if row.status == RunStatus.QUEUED:
                row.status = RunStatus.RUNNING
                row.started_at = self._clock()
            row.pid = pid if pid is not None else row.pid
            return convert.run(row)

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        set_id: str | None = None,
        bytes_added: int | None = None,
        error: str | None = None,
    ) -> Run:
        """Record how a run ended (``status`` is one of the final ones)."""
        status = RunStatus(status)
        if not status.final:
            raise ValueError(f"a run cannot finish as {status}")
        with self._transaction() as s:
            row = self._run(s, run_id)
            if RunStatus(row.status).final:
                raise CatalogConflict(f"run {run_id} already ended {row.status}")
            row.status = status
            row.finished_at = self._clock()
            row.set_id, row.bytes_added, row.error = set_id, bytes_added, error
            return convert.run(row)

    def interrupt_running(self, error: str = INTERRUPTED) -> list[Run]:
        """Mark every running run interrupted (at service start: their process is gone)."""
        with self._transaction() as s:
            rows = list(s.scalars(select(RunRow).where(RunRow.status == RunStatus.RUNNING)))
            now = self._clock()
            for row in rows:
                row.status, row.finished_at, row.error = RunStatus.INTERRUPTED, now, error
            return [convert.run(row) for row in rows]

    def run(self, run_id: int) -> Run:
        with self._transaction() as s:
            return convert.run(self._run(s, run_id))

    def runs(
        self,
        *,
        job: str | None = None,
        statuses: Sequence[RunStatus] = (),
        limit: int = 100,
    ) -> list[Run]:
        """Runs, newest first (of one job, in some statuses)."""
        query = select(RunRow)
        if job is not None:
            query = query.where(RunRow.job == job)
        if statuses:
            query = query.where(RunRow.status.in_([RunStatus(s) for s in statuses]))
        query = query.order_by(RunRow.queued_at.desc(), RunRow.id.desc()).limit(limit)
        with self._transaction() as s:
            return [convert.run(row) for row in s.scalars(query)]

    def last_run(self, job: str, *, statuses: Sequence[RunStatus] = ()) -> Run | None:
        """The newest run of ``job`` (in one of ``statuses``), if any."""
        found = self.runs(job=job, statuses=statuses, limit=1)
        return found[0] if found else None

    def _run(self, s: Session, run_id: int) -> RunRow:
        row = s.get(RunRow, run_id)
        if row is None:
            raise CatalogNotFound(f"no run {run_id} in the catalog")
        return row

    def record_event(
        self, run_id: int, kind: str, payload: Mapping[str, Any], *, at: datetime | None = None
    ) -> RunEvent:
        """Record one event of a run (a progress line, a warning, an item's end)."""
        with self._transaction() as s:
            self._run(s, run_id)
            row = RunEventRow(run_id=run_id, at=at or self._clock(), kind=kind, payload=payload)
            s.add(row)
            s.flush()
            return convert.event(row)

    def events(self, run_id: int, *, after: int = 0) -> list[RunEvent]:
        """A run's events after the one with id ``after``, oldest first (to follow a run)."""
        with self._transaction() as s:
            self._run(s, run_id)
            query = (
                select(RunEventRow)
                .where(RunEventRow.run_id == run_id, RunEventRow.id > after)
                .order_by(RunEventRow.id)
            )
            return [convert.event(row) for row in s.scalars(query)]
