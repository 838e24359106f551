"""The running service as the API drives it: :class:`DaemonControl`, over :class:`Service`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from haprotect.api.control import RestoreRequest
from haprotect.catalog import CatalogNotFound
from haprotect.service.daemon import Service
from haprotect.service.status import JobStatus, Overview


class DaemonControl:
    """:class:`~haprotect.api.control.ServiceControl` for the service of this process."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def status(self) -> Overview:
        return self.service.overview()

    def jobs(self) -> Sequence[JobStatus]:
        return self.service.overview().jobs

    def start_job(self, job: str, *, by: str) -> int:
        try:
            return self.service.run_now(job, by=by).id
        except KeyError:
            raise CatalogNotFound(f"no job {job} in the approved policies") from None

    def start_restore(self, request: RestoreRequest, *, by: str) -> int:
        run = self.service.start_restore(
            request.application,
            by=by,
            set_ref=request.set_id,
            tiers=request.tiers,
            target=Path(request.target) if request.target else None,
            repository=request.repository,
        )
        return run.id

    def cancel_run(self, run_id: int, *, by: str) -> None:
        self.service.cancel_run(run_id, by=by)

    def metrics_text(self) -> bytes:
        return self.service.metrics_text()
