"""Jobs: what the scheduler starts, one per consistency group or ungrouped item.

Terms:

job
    One unit the scheduler starts: a consistency group (its tiers are backed
    up as one snapshot set) or an item that is in no group. A job is keyed
    by what it protects, never by a node: ``group:<cluster>/<group name>`` or
    ``item:<cluster>/<dataset>``, so a failover between two runs changes
    neither the key nor the run history found under it.
nodes
    The nodes a job may read from (its items' ``read_from.nodes`` at policy
    generation time), for the per-node limit; the plan chooses among them
    at run time.

A group's members can disagree: it runs on the most frequent of their
schedules (no member is backed up less often than it asks), with the
highest of their priorities, to the repository most of them name (ties go
to ``spec.repository``, then to the first in sort order). Each job says in
its ``reasons`` what was decided when members disagreed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from haprotect.model.policy import ConsistencyGroup, Item, Policy, Priority
from haprotect.service.cron import cron_schedule

#: Priorities from the first to start to the last.
PRIORITY_ORDER = (Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW)
_RANK = {p: i for i, p in enumerate(PRIORITY_ORDER)}


@dataclass(frozen=True, slots=True)
class Job:
    """One schedulable unit of a policy (see the module's terms)."""

    key: str
    kind: str  # "group" or "item"
    cluster: str
    name: str
    datasets: tuple[str, ...]
    schedule: str
    timezone: str
    priority: Priority
    repository: str
    nodes: tuple[str, ...]
    reasons: tuple[str, ...] = ()

    @property
    def rank(self) -> int:
        """0 for critical, up to 3 for low: sorts the first to start first."""
        return _RANK[self.priority]

    @property
    def applications(self) -> tuple[str, ...]:
        """The applications the job protects (a group's; none for a lone item)."""
        return (self.name,) if self.kind == "group" else ()


def group_key(cluster: str, name: str) -> str:
    return f"group:{cluster}/{name}"


def item_key(cluster: str, dataset: str) -> str:
    return f"item:{cluster}/{dataset}"


def build_jobs(policy: Policy, *, timezone: str = "UTC") -> tuple[Job, ...]:
    """The jobs of ``policy``: its groups, then the items in none, in policy order.

    ``timezone`` is the zone the schedules are read in (the policy has no
    field for it yet: UTC). A group none of whose data sets is an item is
    left out (the policy's checks refuse such a group).
    """
    items = {item.key: item for item in policy.items}
    grouped: set[tuple[str, str]] = set()
    jobs: list[Job] = []
    for group in policy.groups:
        members = [
            items[(group.cluster, d)]
            for tier in group.tiers
            for d in tier.datasets
            if (group.cluster, d) in items
        ]
        if not members:
            continue
        grouped.update(m.key for m in members)
        jobs.append(_group_job(group, members, policy.repository, timezone))
    jobs.extend(
        Job(
            key=item_key(item.cluster, item.dataset),
            kind="item",
            cluster=item.cluster,
            name=item.dataset,
            datasets=(item.dataset,),
            schedule=item.schedule,
            timezone=timezone,
            priority=item.priority,
            repository=item.where,
            nodes=item.read_from.nodes,
        )
        for item in policy.items
        if item.key not in grouped
    )
    return tuple(jobs)


def _group_job(
    group: ConsistencyGroup, members: list[Item], default_repository: str, timezone: str
) -> Job:
    reasons: list[str] = []
    schedules = list(dict.fromkeys(m.schedule for m in members))
    schedule = min(
        schedules, key=lambda s: (cron_schedule(s, timezone).mean_interval(), schedules.index(s))
    )
    if len(schedules) > 1:
        reasons.append(
            f"members' schedules differ ({_by_member(members, lambda m: m.schedule)}): "
            f"the group runs on the most frequent, {schedule}, so no member is backed up "
            "less often than it asks"
        )
    priority = min((m.priority for m in members), key=_RANK.__getitem__)
    if len({m.priority for m in members}) > 1:
        reasons.append(
            f"members' priorities differ ({_by_member(members, lambda m: m.priority.value)}): "
            f"the group takes the highest, {priority.value}"
        )
    counts = Counter(m.where for m in members)
    repository = min(counts, key=lambda r: (-counts[r], r != default_repository, r))
    if len(counts) > 1:
        reasons.append(
            f"members' repositories differ ({_by_member(members, lambda m: m.where)}): "
            f"the group's one snapshot set goes to {repository}, which most of them name"
        )
    nodes = tuple(dict.fromkeys(n for m in members for n in m.read_from.nodes))
    return Job(
        key=group_key(group.cluster, group.name),
        kind="group",
        cluster=group.cluster,
        name=group.name,
        datasets=tuple(m.dataset for m in members),
        schedule=schedule,
        timezone=timezone,
        priority=priority,
        repository=repository,
        nodes=nodes,
        reasons=tuple(reasons),
    )


def _by_member(members: list[Item], value: Callable[[Item], str]) -> str:
    return ", ".join(f"{m.dataset}: {value(m)}" for m in members)
