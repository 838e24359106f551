"""What follows a backup that left a set: the catalog, the copies, retention.

All in the run that took the set, so that a run is "completed" only when
the policy is met: the set complete, copied to as many repositories as the
policy's ``copies`` asks, and retention applied in each. A copy that fails
makes the run partially failed and is named; retention never runs after a
partial set (the newest complete set is what it protects, and a partial set
changes nothing about it).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from haprotect.catalog import Catalog
from haprotect.catalog.records import Run, SetRecord
from haprotect.errors import HaprotectError
from haprotect.model.policy import Item, Retention
from haprotect.service.child import ChildOutcome
from haprotect.service.clock import Clock
from haprotect.service.commands import copy_args, forget_args
from haprotect.service.config import RepositoryConfig, ServiceConfig
from haprotect.service.jobs import Job


class RunContext(Protocol):
    """What the follow-up of a run needs from the service."""

    @property
    def config(self) -> ServiceConfig: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def clock(self) -> Clock: ...

    def child(
        self, run: Run, args: Sequence[str], cancel: threading.Event | None = None
    ) -> ChildOutcome: ...


def after_backup(
    service: RunContext,
    run: Run,
    job: Job,
    items: Sequence[Item],
    set_id: str,
    outcome: ChildOutcome,
    cancel: threading.Event,
) -> list[str]:
    """Record the set, copy it, apply retention; the problems, each one line."""
    config, catalog = service.config, service.catalog
    primary = config.repository(job.repository)
    complete = outcome.status == "completed"
    catalog.record_set(
        SetRecord(
            repository=primary.url,
            set_id=set_id,
            application=job.name,
            taken_at=service.clock.now(),
            complete=complete,
        )
    )
    if not complete:
        return []
    problems: list[str] = []
    holders = [primary]
    try:
        targets = config.copy_repositories(max(i.copies for i in items), primary.url)
    except HaprotectError as exc:
        problems.append(str(exc))
        targets = []
    for target in targets:
        copied = service.child(run, copy_args(primary, target, set_id), cancel)
        if copied.status != "completed":
            problems.append(f"copy to {target.name} failed: {copied.error or copied.status}")
            continue
        catalog.add_copy(primary.url, set_id, target.url)
        holders.append(target)
    retention = merged_retention(items)
    for repo in holders:
        problems += _retention(service, run, job, repo, retention, cancel)
    return problems


def merged_retention(items: Sequence[Item]) -> Retention:
    """What keeps every item's sets: each count the largest any item asks for."""
    counts: dict[str, int] = {}
    for item in items:
        for name, count in item.retention.as_dict().items():
            counts[name] = max(counts.get(name, 0), count)
    return Retention(**counts)


def _retention(
    service: RunContext,
    run: Run,
    job: Job,
    repo: RepositoryConfig,
    retention: Retention,
    cancel: threading.Event,
) -> list[str]:
    if job.kind == "group":
        args = forget_args(repo, retention, applications=job.applications)
    else:
        args = forget_args(repo, retention, datasets=[f"{job.cluster}/{d}" for d in job.datasets])
    outcome = service.child(run, args, cancel)
    if outcome.status != "completed":
        return [f"retention in {repo.name} failed: {outcome.error or outcome.status}"]
    for set_id in removed_sets(outcome.last):
        service.catalog.forget_set(repo.url, set_id)
    return []


def removed_sets(summary: Mapping[str, Any] | None) -> list[str]:
    """The ids of the sets a ``repo forget --json`` summary removed."""
    if not summary:
        return []
    removed = []
    for group in summary.get("sets") or ():
        for decision in group.get("sets") or ():
            if not decision.get("keep", True):
                removed.append(str(decision["id"]))
    return removed
