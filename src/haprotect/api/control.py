"""What the API needs from the running service: :class:`ServiceControl`.

The API reads the catalog itself (policies, runs, events, sets, tokens,
alerts); everything else goes through this protocol, which the daemon
implements and tests replace with a fake. The records it returns are
read-only views: any object with these attributes will do, so the service's
own status records (frozen dataclasses) serve as they are.

Errors: an unknown job or run is a
:class:`~haprotect.catalog.CatalogNotFound` (404), a change the state
forbids (cancelling a finished run, starting a job that is running) a
:class:`~haprotect.catalog.CatalogConflict` (409), a request that cannot be
met a :class:`~haprotect.errors.UsageError` (400), and the service or a
component unavailable a :class:`~haprotect.errors.ComponentError` (503).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

#: ``set_id`` of a :class:`RestoreRequest` that means the newest complete set.
LATEST = "latest"


@dataclass(frozen=True, slots=True)
class RestoreRequest:
    """A restore to start: which set, which application and tiers, to where.

    ``set_id`` is a set's id or ``latest`` (the newest complete set of the
    application); ``tiers`` empty means every tier; ``target`` None restores
    to the original place, else under that directory; ``repository`` None
    means the application's primary repository.
    """

    application: str
    set_id: str = LATEST
    tiers: tuple[str, ...] = ()
    target: str | None = None
    repository: str | None = None


class RpoView(Protocol):
    """A job's or data set's RPO at one moment (breached from ``deadline`` on)."""

    @property
    def breached(self) -> bool: ...
    @property
    def due(self) -> datetime | None: ...
    @property
    def deadline(self) -> datetime | None: ...
    @property
    def age(self) -> timedelta | None: ...


class SetRefView(Protocol):
    """A complete set: its id and when it was taken."""

    @property
    def id(self) -> str: ...
    @property
    def time(self) -> datetime: ...


class LastRunView(Protocol):
    """The last finished run: how it ended (a run status), when, how long, what it added."""

    @property
    def outcome(self) -> str: ...
    @property
    def started(self) -> datetime: ...
    @property
    def duration(self) -> timedelta: ...
    @property
    def bytes_added(self) -> int: ...


class DataSetStatusView(Protocol):
    """The protection of one data set of one application."""

    @property
    def cluster(self) -> str: ...
    @property
    def application(self) -> str: ...
    @property
    def dataset(self) -> str: ...
    @property
    def job(self) -> str: ...
    @property
    def schedule(self) -> str: ...
    @property
    def repository(self) -> str: ...
    @property
    def rpo(self) -> RpoView: ...
    @property
    def last_complete(self) -> SetRefView | None: ...
    @property
    def last_run(self) -> LastRunView | None: ...
    @property
    def next_run(self) -> datetime | None: ...
    @property
    def copies(self) -> Sequence[str]: ...
    @property
    def copies_wanted(self) -> int: ...
    @property
    def drift(self) -> Sequence[str]: ...


class StatusView(Protocol):
    """The protection status at ``at``, per application and data set."""

    @property
    def at(self) -> datetime: ...
    @property
    def datasets(self) -> Sequence[DataSetStatusView]: ...


class JobView(Protocol):
    """A job the scheduler knows: ``group:<cluster>/<group>`` or ``item:<cluster>/<dataset>``."""

    @property
    def job(self) -> str: ...
    @property
    def schedule(self) -> str: ...
    @property
    def datasets(self) -> Sequence[str]: ...
    @property
    def rpo(self) -> RpoView: ...
    @property
    def last_complete(self) -> SetRefView | None: ...
    @property
    def last_run(self) -> LastRunView | None: ...
    @property
    def next_run(self) -> datetime | None: ...
    @property
    def running(self) -> bool: ...


class ServiceControl(Protocol):
    """The running service, as the API drives it (errors: see the module)."""

    def status(self) -> StatusView:
        """The protection status now."""
        ...

    def jobs(self) -> Sequence[JobView]:
        """Every job of the approved policies, by key."""
        ...

    def start_job(self, job: str, *, by: str) -> int:
        """Start a manual run of ``job`` now (queued if limits bind); the run's id."""
        ...

    def start_restore(self, request: RestoreRequest, *, by: str) -> int:
        """Start a restore as a run of its own; the run's id."""
        ...

    def cancel_run(self, run_id: int, *, by: str) -> None:
        """Stop a queued or running run (it ends failed, its tiers resumed)."""
        ...

    def metrics_text(self) -> bytes:
        """The Prometheus exposition (text format 0.0.4) of the service's metrics."""
        ...
