"""From a policy, the cluster as it is now and an inventory, to a :class:`Plan`.

The policy says what to protect and how to choose a source node; the
topology, discovered again for each run from ``policy.metadata.source``,
says who is primary and which standbys are online now, so a failover after
the policy was written is followed without editing it. The inventory says
how to reach each node and where its data is when that differs by node.

Movers and health checks belong to layers below; they come in as two
functions: ``mover_for(kind)`` names the mover of a data set kind, and
``probe(item, node)`` checks a node as a source (when given, the plan's
source choices reflect the cluster's health now, as ``--dry-run`` shows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from haprotect.errors import UsageError
from haprotect.model.inventory import Inventory
from haprotect.model.plan import (
    LONE_TIER,
    Plan,
    PlanItem,
    PlanReason,
    PlanSet,
    PlanTier,
    SourceChoice,
    SourceHealth,
)
from haprotect.model.policy import ConsistencyGroup, Item, Policy
from haprotect.model.topology import Cluster, DataSet, Topology
from haprotect.plan import choose
from haprotect.plan.graph import CycleError, order_problems, quiesce_order, restore_order
from haprotect.policy.fingerprint import topology_fingerprint
from haprotect.redact import display_url

MoverFor = Callable[[str], str | None]
ItemProbe = Callable[[PlanItem, str], SourceHealth]


def build(
    policy: Policy,
    topology: Topology,
    inventory: Inventory,
    *,
    mover_for: MoverFor,
    probe: ItemProbe | None = None,
    applications: Sequence[str] = (),
    datasets: Sequence[str] = (),
    now: datetime | None = None,
) -> Plan:
    """The plan of one backup run; ``applications``/``datasets`` narrow it down."""
    warnings: list[str] = []
    current = topology_fingerprint(topology)
    if current != policy.metadata.topology_fingerprint:
        warnings.append(
            "the cluster's definition changed since the policy was generated "
            f"({policy.metadata.topology_fingerprint[:19]}... -> {current[:19]}...); "
            "run 'haprotect drift' to see how"
        )
    builder = _Builder(policy, topology, inventory, mover_for, probe, warnings)
    sets = [builder.group_set(g) for g in policy.groups]
    grouped = {(d, g.cluster) for g in policy.groups for t in g.tiers for d in t.datasets}
    sets += [builder.lone_set(i) for i in policy.items if (i.dataset, i.cluster) not in grouped]
    sets = _narrowed(sets, applications, datasets)
    return Plan(
        policy_name=policy.metadata.name,
        policy_source=policy.metadata.source,
        policy_fingerprint=policy.metadata.topology_fingerprint,
        topology_fingerprint=current,
        topology=topology,
        inventory=inventory,
        sets=tuple(sets),
        created=now or datetime.now(UTC),
        warnings=tuple(warnings),
    )


def _narrowed(
    sets: list[PlanSet], applications: Sequence[str], datasets: Sequence[str]
) -> list[PlanSet]:
    if applications:
        known = {s.application for s in sets if s.application}
        unknown = [a for a in applications if a not in known]
        if unknown:
            raise UsageError(
                f"no application {', '.join(unknown)} in the policy",
                hint=f"applications: {', '.join(sorted(known)) or 'none'}",
            )
        sets = [s for s in sets if s.application in applications]
    if datasets:
        wanted = set(datasets)
        found = {name for s in sets for i in s.items for name in (i.dataset, i.scope)}
        unknown = [d for d in datasets if d not in found]
        if unknown:
            raise UsageError(f"no data set {', '.join(unknown)} in the policy (or application)")
        kept = []
        for s in sets:
            tiers = tuple(
                replace(t, items=tuple(i for i in t.items if {i.dataset, i.scope} & wanted))
                for t in s.tiers
            )
            if any(t.items for t in tiers):
                kept.append(replace(s, tiers=tiers))
        sets = kept
    return sets


class _Builder:
    def __init__(
        self,
        policy: Policy,
        topology: Topology,
        inventory: Inventory,
        mover_for: MoverFor,
        probe: ItemProbe | None,
        warnings: list[str],
    ) -> None:
        self.policy = policy
        self.clusters = {c.name: c for c in topology.clusters}
        self.inventory = inventory
        self.mover_for = mover_for
        self.probe = probe
        self.warnings = warnings

    def group_set(self, group: ConsistencyGroup) -> PlanSet:
        tiers = []
        for tier in group.tiers:
            items = tuple(
                self.item(self.policy.item(d, group.cluster), tier.name, tier.depends_on)
                for d in tier.datasets
            )
            held_by = tier.quiesce + self.inventory.quiescers(group.cluster, group.name, tier.name)
            tiers.append(PlanTier(tier.name, tier.depends_on, tier.resources, items, held_by))
        edges = {t.name: t.depends_on for t in group.tiers}
        restore, quiesce = group.restore_order, group.quiesce_order
        if order_problems(restore, edges) or order_problems(tuple(reversed(quiesce)), edges):
            try:
                restore, quiesce = restore_order(edges), quiesce_order(edges)
            except CycleError as exc:
                raise UsageError(f"consistency group {group.name}: {exc}") from None
            self.warnings.append(f"group {group.name}: orders recomputed from depends_on")
        repositories = list(dict.fromkeys(i.repository for t in tiers for i in t.items))
        if len(repositories) > 1:
            self.warnings.append(
                f"the items of {group.name} name {len(repositories)} repositories; "
                f"the set is written to {display_url(repositories[0])}, as one set must be"
            )
        return PlanSet(
            name=group.name,
            cluster=group.cluster,
            application=group.name,
            repository=repositories[0] if repositories else self.policy.repository,
            tiers=tuple(tiers),
            quiesce_order=quiesce,
            restore_order=restore,
        )

    def lone_set(self, item: Item) -> PlanSet:
        planned = self.item(item, LONE_TIER, ())
        return PlanSet(
            name=item.dataset,
            cluster=item.cluster,
            application=None,
            repository=planned.repository,
            tiers=(PlanTier(LONE_TIER, (), (item.what.resource,), (planned,)),),
            quiesce_order=(LONE_TIER,),
            restore_order=(LONE_TIER,),
        )

    def item(self, item: Item, tier: str, depends_on: tuple[str, ...]) -> PlanItem:
        cluster = self.clusters.get(item.cluster)
        dataset = _dataset(cluster, item.dataset)
        problems: list[str] = []
        mover = self.mover_for(item.what.kind)
        reasons = [
            PlanReason(
                "mover",
                f"kind {item.what.kind}: mover {mover}" if mover else "no mover",
            ),
            PlanReason("repository", f"written to {display_url(item.where)}"),
        ]
        if mover is None:
            problems.append(f"no mover copies data of kind {item.what.kind}")
        if cluster is None or dataset is None:
            where = f"cluster {item.cluster}" if cluster is None else f"data set {item.dataset}"
            problems.append(f"{where} is not in the cluster any more (see 'haprotect drift')")
            source = SourceChoice(role=item.read_from.role, node=None, reasons=(problems[-1],))
            base_location = dict(item.what.location)
        else:
            source = choose.initial(item.read_from, dataset, cluster)
            base_location = dict(dataset.location)
        planned = PlanItem(
            cluster=item.cluster,
            dataset=item.dataset,
            kind=item.what.kind,
            resource=item.what.resource,
            tier=tier,
            depends_on=depends_on,
            mover=mover,
            repository=item.where,
            cluster_location=base_location,
            source=source,
            backing=item.what.backing,
            problems=tuple(problems),
            notes=self._notes(item),
        )
        if self.probe is not None and not problems:
            probe = self.probe
            source = choose.check(source, lambda node: probe(planned, node))
        location = base_location
        if source.node is not None:
            location = self.inventory.location(
                source.node, item.cluster, item.dataset, base_location
            )
            changed = sorted(k for k in location if base_location.get(k) != location[k])
            origin = self.inventory.origin or "the inventory"
            because = (
                f"{', '.join(changed)} for {source.node} from {origin}"
                if changed
                else "as the cluster configures it"
            )
            reasons.append(PlanReason("location", because))
        reasons.append(PlanReason("node", "; ".join(source.reasons)))
        return replace(
            planned,
            source=source,
            location=location,
            reasons=tuple(reasons),
            problems=tuple(problems),
        )

    def _notes(self, item: Item) -> tuple[str, ...]:
        inside = [
            other.dataset
            for other in self.policy.items
            if other.cluster == item.cluster and other.what.backing == item.dataset
        ]
        if not inside:
            return ()
        return (
            f"{', '.join(inside)} lie(s) inside it and are protected on their own: "
            "their files are copied with this item too",
        )


def _dataset(cluster: Cluster | None, dataset_id: str) -> DataSet | None:
    if cluster is None:
        return None
    try:
        return cluster.dataset(dataset_id)
    except KeyError:
        return None
