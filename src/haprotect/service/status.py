"""The protection status the service shows: per data set, per job, per repository.

Plain frozen records, built from what the catalog knows (runs, sets, copies,
drift) and the time ``now``; ``haprotect status``, the API's status
resource, ``/metrics`` (:mod:`haprotect.service.metrics`) and the alerts
(:mod:`haprotect.service.notify`) all read them. Building one does no I/O:
:func:`rpo_of` gives the RPO (:mod:`haprotect.service.rpo`) at ``now``
that each record carries beside the facts.

Terms:

job
    ``group:<cluster>/<group>`` or ``item:<cluster>/<dataset>``: what runs
    as one snapshot set, keyed by what it protects, never by node.
complete set
    A set in which the data set (or, for a job, every data set) was copied
    completely.
run outcome
    How a run ended: the three statuses of a run's result
    (:class:`haprotect.model.result.Status`), or ``interrupted`` when the
    service stopped during the run and recorded it on restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from types import MappingProxyType

from haprotect.service.rpo import Rpo, assess


class RunOutcome(StrEnum):
    """How a run ended (see the module's terms)."""

    COMPLETED = "completed"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class SetRef:
    """A complete set: its id and when it was taken."""

    id: str
    time: datetime


@dataclass(frozen=True, slots=True)
class LastRun:
    """The last finished run of a job: how it ended, when it started, how long, what it added."""

    outcome: RunOutcome
    started: datetime
    duration: timedelta
    bytes_added: int


@dataclass(frozen=True, slots=True)
class DataSetStatus:
    """The protection of one data set of one application.

    ``copies`` are the repositories (as displayed, without credentials) that
    hold the last complete set, the primary one included; the policy wants
    ``copies_wanted`` of them. ``drift`` holds one line per drift finding
    about the data set or its application.
    """

    cluster: str
    application: str
    dataset: str
    job: str
    schedule: str
    repository: str
    rpo: Rpo
    last_complete: SetRef | None = None
    last_run: LastRun | None = None
    next_run: datetime | None = None
    copies: tuple[str, ...] = ()
    copies_wanted: int = 1
    drift: tuple[str, ...] = ()

    @property
    def copies_made(self) -> int:
        return len(self.copies)

    @property
    def copies_missing(self) -> int:
        return max(self.copies_wanted - self.copies_made, 0)


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One job: its data sets (``cluster/dataset``), last runs, counts of runs by outcome."""

    job: str
    schedule: str
    datasets: tuple[str, ...]
    rpo: Rpo
    last_complete: SetRef | None = None
    last_run: LastRun | None = None
    next_run: datetime | None = None
    running: bool = False
    runs: Mapping[RunOutcome, int] = field(default_factory=dict)

    def __post_init__(self) -> None:  # a read-only copy: the record stays as it was made
        object.__setattr__(self, "runs", MappingProxyType(dict(self.runs)))


@dataclass(frozen=True, slots=True)
class RepositoryStatus:
    """A repository (as displayed, without credentials) and the bytes it stores."""

    repository: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the service reports at ``at``: what ``/metrics`` and ``status`` show."""

    at: datetime
    datasets: tuple[DataSetStatus, ...] = ()
    jobs: tuple[JobStatus, ...] = ()
    repositories: tuple[RepositoryStatus, ...] = ()

    @property
    def breached(self) -> tuple[DataSetStatus, ...]:
        """The data sets whose RPO is breached."""
        return tuple(d for d in self.datasets if d.rpo.breached)


def rpo_of(
    schedule: str,
    last_complete: SetRef | None,
    now: datetime,
    *,
    since: datetime | None = None,
    grace: timedelta | None = None,
    tz: tzinfo = UTC,
) -> Rpo:
    """The RPO at ``now`` of a job or data set on ``schedule`` (:func:`.rpo.assess`)."""
    last = None if last_complete is None else last_complete.time
    return assess(schedule, last, now, since=since, grace=grace, tz=tz)
