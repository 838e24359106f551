"""The dashboard's content: each application's data sets with their protection, at a glance.

The protection of each data set is the service's own status (the one
``haprotect status`` and the API show); beside it the recent failed runs,
the drift found, and the policy versions waiting for review.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from haprotect.api import schemas
from haprotect.api.control import DataSetStatusView, ServiceControl
from haprotect.api.policy_review import summaries
from haprotect.catalog import Catalog
from haprotect.catalog.records import Run, RunStatus

#: Runs that ended this way are failures on the dashboard.
FAILED = (RunStatus.FAILED, RunStatus.PARTIALLY_FAILED, RunStatus.INTERRUPTED)
RECENT_FAILURES = 10


@dataclass(frozen=True, slots=True)
class Application:
    """One application of one cluster and the status of each of its data sets."""

    cluster: str
    name: str
    datasets: tuple[DataSetStatusView, ...]

    @property
    def breached(self) -> int:
        return sum(1 for d in self.datasets if d.rpo.breached)


@dataclass(frozen=True, slots=True)
class Dashboard:
    at: datetime
    applications: tuple[Application, ...]
    failures: tuple[Run, ...]
    #: (``cluster/dataset``, one drift finding)
    drift: tuple[tuple[str, str], ...]
    pending: tuple[schemas.PolicySummary, ...]

    @property
    def breached(self) -> int:
        return sum(a.breached for a in self.applications)


def applications(datasets: Sequence[DataSetStatusView]) -> tuple[Application, ...]:
    """The data sets by cluster and application, in the order the status lists them."""
    grouped: dict[tuple[str, str], list[DataSetStatusView]] = {}
    for d in datasets:
        grouped.setdefault((d.cluster, d.application), []).append(d)
    return tuple(Application(c, a, tuple(ds)) for (c, a), ds in grouped.items())


def dashboard(catalog: Catalog, control: ServiceControl) -> Dashboard:
    status = control.status()
    return Dashboard(
        at=status.at,
        applications=applications(status.datasets),
        failures=tuple(catalog.runs(statuses=FAILED, limit=RECENT_FAILURES)),
        drift=tuple(
            (f"{d.cluster}/{d.dataset}", line) for d in status.datasets for line in d.drift
        ),
        pending=tuple(p for p in summaries(catalog) if p.pending),
    )
