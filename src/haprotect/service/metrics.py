"""The service's status as Prometheus metrics: what ``/metrics`` serves.

:class:`StatusCollector` turns an :class:`~haprotect.service.status.Overview`
into metric families each time Prometheus scrapes (the overview is read
through a callable, so a scrape sees the catalog as it is then);
:func:`exposition` renders one overview in the text format.

Per data set (labels ``cluster``, ``application``, ``dataset``):

==============================================  ==========================================
``haprotect_last_complete_set_timestamp_seconds``  when the last complete set was taken
``haprotect_last_run_status``                   a state set: 1 for the last run's outcome
                                                (label ``haprotect_last_run_status``)
``haprotect_last_run_timestamp_seconds``        when the last run started
``haprotect_last_run_duration_seconds``         how long it took
``haprotect_last_run_added_bytes``              the bytes it added to the repository
``haprotect_rpo_breached``                      1 when the RPO is breached, else 0
``haprotect_rpo_deadline_timestamp_seconds``    when it will be (or was) breached
``haprotect_next_run_timestamp_seconds``        the next scheduled run
``haprotect_copies``                            repositories holding the last complete set
``haprotect_copies_wanted``                     the copies the policy asks for
``haprotect_drift_findings``                    drift findings about the data set
==============================================  ==========================================

Per repository (label ``repository``, shown without credentials):
``haprotect_repository_size_bytes``. Per job (labels ``job``, ``outcome``):
the counter ``haprotect_runs_total``, every outcome present (0 until one
happens) so that ``increase()`` sees the first.

A series whose value is unknown (no complete set yet, no run yet) is left
out rather than given a made-up value. Names follow Prometheus' conventions:
base units, the unit as the last word (``_bytes``, ``_seconds``), ``_total``
on counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    StateSetMetricFamily,
)

from haprotect.redact import display_url
from haprotect.service.status import DataSetStatus, Overview, RunOutcome

#: The content type of :func:`exposition`'s text, for the HTTP response.
CONTENT_TYPE = CONTENT_TYPE_LATEST

_DATASET = ("cluster", "application", "dataset")

#: name (without ``haprotect_``), help, and the value of a data set (None: no series).
_GAUGES: tuple[tuple[str, str, Callable[[DataSetStatus], float | None]], ...] = (
    (
        "last_complete_set_timestamp_seconds",
        "When the last complete set of the data set was taken (Unix time).",
        lambda d: None if d.last_complete is None else d.last_complete.time.timestamp(),
    ),
    (
        "last_run_timestamp_seconds",
        "When the last finished run of the data set's job started (Unix time).",
        lambda d: None if d.last_run is None else d.last_run.started.timestamp(),
    ),
    (
        "last_run_duration_seconds",
        "How long the last finished run of the data set's job took.",
        lambda d: None if d.last_run is None else d.last_run.duration.total_seconds(),
    ),
    (
        "last_run_added_bytes",
        "Bytes the last finished run of the data set's job added to the repository.",
        lambda d: None if d.last_run is None else d.last_run.bytes_added,
    ),
    (
        "rpo_breached",
        "1 when the last complete set is older than the schedule allows, else 0.",
        lambda d: 1.0 if d.rpo.breached else 0.0,
    ),
    (
        "rpo_deadline_timestamp_seconds",
        "When the RPO of the data set is breached unless a complete set is taken (Unix time).",
        lambda d: None if d.rpo.deadline is None else d.rpo.deadline.timestamp(),
    ),
    (
        "next_run_timestamp_seconds",
        "When the data set's job runs next (Unix time).",
        lambda d: None if d.next_run is None else d.next_run.timestamp(),
    ),
    (
        "copies",
        "Repositories holding the last complete set of the data set.",
        lambda d: d.copies_made,
    ),
    (
        "copies_wanted",
        "Repositories the policy wants the data set's sets in.",
        lambda d: d.copies_wanted,
    ),
    (
        "drift_findings",
        "Drift findings about the data set or its application.",
        lambda d: len(d.drift),
    ),
)


class StatusCollector:
    """A Prometheus collector reading the overview ``source`` returns at each scrape."""

    def __init__(self, source: Callable[[], Overview]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        return iter(families(self._source()))


def families(overview: Overview) -> list[Metric]:
    """The metric families of ``overview`` (see the module docstring)."""
    out: list[Metric] = []
    for name, doc, value in _GAUGES:
        gauge = GaugeMetricFamily(f"haprotect_{name}", doc, labels=_DATASET)
        for d in overview.datasets:
            found = value(d)
            if found is not None:
                gauge.add_metric(_labels(d), found)
        out.append(gauge)
    states = StateSetMetricFamily(
        "haprotect_last_run_status",
        "How the last finished run of the data set's job ended.",
        labels=_DATASET,
    )
    for d in overview.datasets:
        if d.last_run is not None:
            outcome = d.last_run.outcome
            states.add_metric(_labels(d), {o.value: o is outcome for o in RunOutcome})
    out.append(states)
    size = GaugeMetricFamily(
        "haprotect_repository_size_bytes",
        "Bytes the repository stores.",
        labels=("repository",),
    )
    for r in overview.repositories:
        size.add_metric((display_url(r.repository),), r.size_bytes)
    out.append(size)
    runs = CounterMetricFamily(
        "haprotect_runs", "Finished runs of the job, by outcome.", labels=("job", "outcome")
    )
    for j in overview.jobs:
        for o in RunOutcome:
            runs.add_metric((j.job, o.value), j.runs.get(o, 0))
    out.append(runs)
    return out


def _labels(d: DataSetStatus) -> tuple[str, str, str]:
    return (d.cluster, d.application, d.dataset)


def registry(source: Callable[[], Overview]) -> CollectorRegistry:
    """A registry holding only a :class:`StatusCollector` of ``source``."""
    made = CollectorRegistry(auto_describe=False)
    made.register(StatusCollector(source))
    return made


def exposition(overview: Overview) -> bytes:
    """``overview`` in Prometheus' text format (:data:`CONTENT_TYPE`)."""
    return generate_latest(registry(lambda: overview))
