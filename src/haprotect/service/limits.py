"""Which due jobs start now: priority first, then the most overdue, under the limits.

Limits bind three ways: runs at once in all (``total``), per repository
(``per_repository``) and per node (``per_node``). A job's nodes are those it
may read from; the plan picks one only at run time, so a run counts against
each of them and starts only where all have room (the safe side: a node is
never over its limit). A job never runs twice at once: one already running
is not started again, whatever its schedule says. A job held back by a
limit keeps its place: it is as overdue on the next tick, and more.

:func:`due_jobs` is the costly part (one schedule lookup per job, a few
microseconds each); a service loop that keeps the jobs' next starts in a
heap calls :func:`choose_from` with only those whose time came.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from haprotect.service.backoff import Backoff
from haprotect.service.jobs import Job
from haprotect.service.schedule import JobState, Next, next_start


@dataclass(frozen=True, slots=True)
class Limits:
    """How many runs at once: in all, per repository, per node (None: no limit)."""

    total: int | None = 4
    per_repository: int | None = 2
    per_node: int | None = 1

    def __post_init__(self) -> None:
        for name in ("total", "per_repository", "per_node"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"limits: {name} must be at least 1 (or no limit)")


@dataclass(frozen=True, slots=True)
class Running:
    """A run in progress, as the limits count it."""

    key: str
    repository: str
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Start:
    """A job to start now, and the start it is (scheduled, catch-up or retry)."""

    job: Job
    next: Next


@dataclass(frozen=True, slots=True)
class Held:
    """A due job that does not start now, and why."""

    job: Job
    next: Next
    because: str


@dataclass(frozen=True, slots=True)
class Choice:
    """What starts now, in order, and what waits."""

    start: tuple[Start, ...]
    held: tuple[Held, ...]


_NEVER = JobState()


def due_jobs(
    jobs: Iterable[Job], states: Mapping[str, JobState], now: datetime, backoff: Backoff
) -> list[tuple[Job, Next]]:
    """The jobs due at ``now`` with their next start, first to start first."""
    due: list[tuple[Job, Next]] = []
    for job in jobs:
        upcoming = next_start(job, states.get(job.key, _NEVER), now, backoff)
        if upcoming.due(now):
            due.append((job, upcoming))
    due.sort(key=lambda pair: (pair[0].rank, pair[1].since, pair[0].key))
    return due


def choose(
    jobs: Iterable[Job],
    states: Mapping[str, JobState],
    running: Sequence[Running],
    now: datetime,
    *,
    limits: Limits,
    backoff: Backoff,
) -> Choice:
    """Which of ``jobs`` start at ``now``, given what is ``running``."""
    busy = {r.key for r in running} | {key for key, s in states.items() if s.running}
    return choose_from(due_jobs(jobs, states, now, backoff), running, busy, limits)


def choose_from(
    due: Sequence[tuple[Job, Next]],
    running: Sequence[Running],
    busy: set[str],
    limits: Limits,
) -> Choice:
    """Start ``due`` (first to start first) while the limits allow; ``busy`` keys never."""
    busy = set(busy)
    total = len(running)
    per_repository = Counter(r.repository for r in running)
    per_node = Counter(n for r in running for n in r.nodes)
    started: list[Start] = []
    held: list[Held] = []
    for job, upcoming in due:
        because = _blocked(job, busy, total, per_repository, per_node, limits)
        if because:
            held.append(Held(job, upcoming, because))
            continue
        started.append(Start(job, upcoming))
        busy.add(job.key)
        total += 1
        per_repository[job.repository] += 1
        per_node.update(job.nodes)
    return Choice(tuple(started), tuple(held))


def _blocked(
    job: Job,
    busy: set[str],
    total: int,
    per_repository: Counter[str],
    per_node: Counter[str],
    limits: Limits,
) -> str:
    if job.key in busy:
        return "already running"
    if limits.total is not None and total >= limits.total:
        return f"the global limit: {total} at once"
    if limits.per_repository is not None and (
        per_repository[job.repository] >= limits.per_repository
    ):
        count = per_repository[job.repository]
        return f"repository {job.repository} at its limit ({count} at once)"
    if limits.per_node is not None:
        for node in job.nodes:
            if per_node[node] >= limits.per_node:
                return f"node {node} at its limit ({per_node[node]} at once)"
    return ""
