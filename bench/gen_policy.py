"""Generate a large, valid policy for the scheduling benchmark.

10,000 items over 1,000 applications (by default) on eight nodes: each
application is a consistency group of three tiers (four replicated
filesystems under storage, three PostgreSQL data sets under database, one
shared filesystem under app) plus two local data sets in no group. Schedules
mix every 15 minutes (critical applications), hourly, every 4 hours and
daily; every tenth group has members whose schedules differ. Written with
haprotect's own policy writer, so it is what ``haprotect plan`` would write.
Seeded: the same arguments give the same file.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime
from pathlib import Path

from haprotect.model.policy import (
    ConsistencyGroup,
    Decision,
    Fallback,
    GroupTier,
    Item,
    Metadata,
    Policy,
    Priority,
    ReadFrom,
    ReadRole,
    Reason,
    Retention,
    What,
)
from haprotect.model.topology import Replication
from haprotect.policy.io import dump_policy

NODES = [f"node{i:02d}" for i in range(1, 9)]
REPOSITORY = "file:///var/lib/haprotect/repository"
OFFSITE = "s3://backups/haprotect"
TIERS = (("storage", "filesystem", 4), ("database", "postgresql", 3), ("app", "filesystem", 1))
LONE = 2


def generate(applications: int, seed: int) -> Policy:
    rng = random.Random(seed)
    items: list[Item] = []
    groups: list[ConsistencyGroup] = []
    for a in range(applications):
        name = f"app{a:04d}"
        home, other = NODES[a % len(NODES)], NODES[(a + 1) % len(NODES)]
        priority = rng.choice([Priority.CRITICAL, Priority.HIGH, Priority.HIGH, Priority.NORMAL])
        schedule = (
            "*/15 * * * *"
            if priority is Priority.CRITICAL
            else rng.choice(["0 * * * *", "0 * * * *", "0 */4 * * *"])
        )
        tiers: list[GroupTier] = []
        for t, (tier, kind, count) in enumerate(TIERS):
            datasets = []
            for i in range(count):
                dataset = f"{name}-{tier}{i}"
                own = schedule if a % 10 or i else "30 2 * * *"
                items.append(_item(dataset, kind, own, priority, home, other, rng, name))
                datasets.append(dataset)
            depends = (TIERS[t - 1][0],) if t else ()
            tiers.append(GroupTier(tier, tuple(datasets), tuple(datasets), depends))
        order = tuple(t.name for t in tiers)
        groups.append(
            ConsistencyGroup(
                name=name,
                cluster="big",
                tiers=tuple(tiers),
                quiesce_order=tuple(reversed(order)),
                restore_order=order,
                reasons=(Reason(Decision.GROUP, "generated", f"application {name}"),),
            )
        )
        for i in range(LONE):
            schedule = rng.choice(["30 2 * * *", "0 */4 * * *"])
            items.append(
                _item(f"{name}-local{i}", "filesystem", schedule, Priority.LOW, home, None, rng)
            )
    metadata = Metadata(
        name="big",
        source="bench/gen_policy.py",
        clusters=("big",),
        generated_at=datetime(2026, 12, 7, tzinfo=UTC),
        topology_fingerprint="sha256:" + "0" * 64,
    )
    return Policy(metadata, REPOSITORY, tuple(items), tuple(groups))


def _item(
    dataset: str,
    kind: str,
    schedule: str,
    priority: Priority,
    home: str,
    other: str | None,
    rng: random.Random,
    app: str | None = None,
) -> Item:
    replicated = other is not None and kind == "filesystem"
    read = (
        ReadFrom(ReadRole.STANDBY, (other,), 300, Fallback.PRIMARY)
        if replicated and other is not None
        else ReadFrom(ReadRole.ACTIVE if other else ReadRole.LOCAL, (home,))
    )
    return Item(
        cluster="big",
        dataset=dataset,
        what=What(
            kind=kind,
            resource=dataset,
            ha=other is not None,
            replication=Replication.REPLICATED
            if replicated
            else Replication.SHARED
            if other
            else Replication.LOCAL,
            location={"directory": f"/srv/{dataset}"},
        ),
        schedule=schedule,
        where=OFFSITE if rng.random() < 0.1 else REPOSITORY,
        retention=Retention(keep_hourly=24, keep_daily=7),
        copies=2 if other else 1,
        priority=priority,
        read_from=read,
        reasons=(Reason(Decision.INCLUDE, f"in application {app}" if app else "local", dataset),),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--applications", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    args.output.write_text(dump_policy(generate(args.applications, args.seed)))


if __name__ == "__main__":
    main()
