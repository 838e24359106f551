"""Plans, and the snapshot sets that backups leave in a repository.

Terms:

plan
    What one backup run does, built from a policy, the cluster's topology
    as it is now and an inventory (:mod:`haprotect.plan`): per consistency
    group a :class:`PlanSet` with its tiers, in quiesce order (top-down) and
    restore order (bottom-up), and per data set a :class:`PlanItem` naming
    its mover, the node to read from and the location there, each run-time
    choice with its reason. A data set in no group is planned alone, as a
    set of one tier named ``data``.
source choice
    Which node an item is read from. For ``role: standby`` a healthy
    standby whose replication lag is within ``max_lag_seconds``; with none,
    the policy's ``fallback`` decides: read the primary, wait for a standby,
    or fail. Decided when planning and checked again just before the copy.
snapshot set
    What backing up one application leaves: one repository snapshot per
    tier and data set, plus one holding the topology the set was planned
    from, all sharing a set id and describing the whole set in their
    metadata, so that the repository alone is enough to list and restore
    it (format: docs/engine.md).
restore plan
    Which items of a set are restored, where (the original place, or
    ``DIR/<tier>/<dataset>``), in restore order, and what is there now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from haprotect.model.inventory import Inventory
from haprotect.model.policy import Fallback, ReadRole, TierQuiescer
from haprotect.model.snapshot import JSONValue
from haprotect.model.topology import Topology

#: the tier of a data set that is in no consistency group
LONE_TIER = "data"


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """What a mover found when it checked a node as a source for an item."""

    node: str
    healthy: bool
    detail: str
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    positions: Mapping[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceChoice:
    """The node to read from (``None``: none can be read), and why.

    ``candidates`` are the online standbys, in the order they are tried
    (for another role, the one node the topology gives); ``wait`` is set
    when no standby is healthy and the policy says to wait for one;
    ``checks`` are the health checks the choice was made on.
    ``basis`` are the reasons that come from the topology alone (who is
    primary, which standbys are online); ``reasons`` adds what the checks
    found, so a later check starts again from ``basis``.
    """

    role: ReadRole
    node: str | None
    primary: str | None = None
    candidates: tuple[str, ...] = ()
    max_lag_seconds: int | None = None
    fallback: Fallback | None = None
    fallback_used: bool = False
    wait: bool = False
    basis: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    checks: tuple[SourceHealth, ...] = ()

    @property
    def health(self) -> SourceHealth | None:
        """The last check of the chosen node, if it was checked."""
        for check in reversed(self.checks):
            if check.node == self.node:
                return check
        return None


@dataclass(frozen=True, slots=True)
class PlanReason:
    """Why the plan took one run-time decision (the mover, the node, the location, ...)."""

    decision: str  #: ``mover``, ``node``, ``location``, ``repository``, ``tier``
    because: str


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One data set to copy. ``problems`` say why it cannot be (then it fails)."""

    cluster: str
    dataset: str
    kind: str
    resource: str
    tier: str
    depends_on: tuple[str, ...]
    mover: str | None
    repository: str
    cluster_location: Mapping[str, str]
    source: SourceChoice
    location: Mapping[str, str] = field(default_factory=dict)
    backing: str | None = None
    reasons: tuple[PlanReason, ...] = ()
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def scope(self) -> str:
        return f"{self.cluster}/{self.dataset}"


@dataclass(frozen=True, slots=True)
class PlanTier:
    """One tier of a planned set: its items, and the quiescers that hold it."""

    name: str
    depends_on: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    items: tuple[PlanItem, ...] = ()
    #: The policy's quiescers of this tier (empty: the tier is not held).
    quiesce: tuple[TierQuiescer, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanSet:
    """One consistency group (or one data set planned alone): one snapshot set."""

    name: str
    cluster: str
    application: str | None
    repository: str
    tiers: tuple[PlanTier, ...]
    quiesce_order: tuple[str, ...]
    restore_order: tuple[str, ...]

    def tier(self, name: str) -> PlanTier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)

    @property
    def items(self) -> tuple[PlanItem, ...]:
        return tuple(item for tier in self.tiers for item in tier.items)

    def in_quiesce_order(self) -> tuple[PlanItem, ...]:
        return tuple(item for name in self.quiesce_order for item in self.tier(name).items)

    def in_restore_order(self) -> tuple[PlanItem, ...]:
        return tuple(item for name in self.restore_order for item in self.tier(name).items)


@dataclass(frozen=True, slots=True)
class Plan:
    """A backup run. ``topology`` is the cluster as discovered for this run."""

    policy_name: str
    policy_source: str
    policy_fingerprint: str
    topology_fingerprint: str
    topology: Topology
    inventory: Inventory
    sets: tuple[PlanSet, ...]
    created: datetime
    warnings: tuple[str, ...] = ()

    @property
    def items(self) -> tuple[PlanItem, ...]:
        return tuple(item for s in self.sets for item in s.items)

    @property
    def repositories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.repository for s in self.sets))


# -- what a backup leaves in the repository -----------------------------------


@dataclass(frozen=True, slots=True)
class SetTier:
    """One tier of a snapshot set, as the set's metadata records it."""

    name: str
    depends_on: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SetItem:
    """One data set's snapshot in a set, read back from its metadata.

    ``root`` is where the data sits inside the snapshot; ``path_key`` names
    the location parameter that is the data's path on a node (``pgdata``,
    ``directory``...), so that a restore to the original place can look it
    up again with another inventory; ``restore_node`` is the node a restore
    to the original place writes to (the primary for replicated data).
    """

    snapshot_id: str
    tier: str
    dataset: str
    cluster: str
    kind: str
    mover: str
    depends_on: tuple[str, ...]
    node: str | None
    role: str
    why: tuple[str, ...]
    location: Mapping[str, str]
    cluster_location: Mapping[str, str]
    path_key: str | None
    root: str
    restore_node: str | None
    started: datetime
    finished: datetime
    details: Mapping[str, JSONValue] = field(default_factory=dict)
    errors: int = 0
    files: int = 0
    bytes: int = 0
    #: why the copy is incomplete although every file was read (it misses writes)
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotSet:
    """A snapshot set read back from the repository: its tiers, orders, planned and stored items.

    Only a complete set (:attr:`complete`) is a restore point.
    """

    id: str
    name: str
    cluster: str
    application: str | None
    started: datetime
    policy_name: str
    policy_fingerprint: str
    tiers: tuple[SetTier, ...]
    quiesce_order: tuple[str, ...]
    restore_order: tuple[str, ...]
    planned: tuple[tuple[str, str], ...]  #: (tier, dataset) of every item the run planned
    items: tuple[SetItem, ...]
    #: the id of the set's topology snapshot, if the repository holds it
    topology_snapshot: str | None = None

    @property
    def missing(self) -> tuple[tuple[str, str], ...]:
        have = {(i.tier, i.dataset) for i in self.items}
        return tuple(p for p in self.planned if p not in have)

    @property
    def partial_because(self) -> tuple[str, ...]:
        """Why the set is partial, one reason per line; empty: it is complete."""
        reasons = [] if self.planned else ["it planned no items"]
        reasons += [f"{t}/{d} has no snapshot" for t, d in self.missing]
        for i in self.items:
            if i.errors:
                reasons.append(f"{i.tier}/{i.dataset}: {i.errors} files could not be read")
            reasons += [f"{i.tier}/{i.dataset}: {p}" for p in i.problems]
        if self.topology_snapshot is None:
            reasons.append("its topology snapshot is missing")
        return tuple(reasons)

    @property
    def complete(self) -> bool:
        """Every planned item has a snapshot that misses nothing (files that vanished
        while it ran aside), and the set's topology snapshot is here.

        Only a complete set is a restore point: ``latest`` never means a partial one.
        """
        return not self.partial_because

    def tier(self, name: str) -> SetTier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)

    def items_of(self, tier: str) -> tuple[SetItem, ...]:
        return tuple(i for i in self.items if i.tier == tier)


# -- restoring a set ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestoreItem:
    """Where one item goes; ``existing`` lists (some of) what is there now."""

    item: SetItem
    target: str
    in_place: bool
    node: str | None = None
    existing: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def overwrites(self) -> bool:
        return bool(self.existing)


@dataclass(frozen=True, slots=True)
class RestoreTier:
    """One tier of a restore plan, with the items restored in it."""

    name: str
    depends_on: tuple[str, ...] = ()
    items: tuple[RestoreItem, ...] = ()


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """The chosen tiers of a set, in restore order.

    ``overwrite`` allows replacing what is at a target; ``keep_running``
    leaves a restored server running after its health check (by default when
    restoring elsewhere; a server restored in place is stopped again, for the
    cluster to start it).
    """

    set: SnapshotSet
    tiers: tuple[RestoreTier, ...]
    to: str | None = None
    overwrite: bool = False
    keep_running: bool = False

    @property
    def items(self) -> tuple[RestoreItem, ...]:
        return tuple(item for tier in self.tiers for item in tier.items)

    @property
    def live(self) -> bool:
        """Whether it replaces data in its original place (live data)."""
        return any(i.in_place and i.overwrites for i in self.items)
