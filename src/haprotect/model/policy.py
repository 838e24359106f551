"""A data protection policy: what to back up, when, where, and why.

Terms:

item
    The protection of one data set: its schedule (cron), the repository it
    goes to (``where``), how many snapshots to keep (``retention``), how many
    copies, its priority, and which node to read it from (``read_from``).
reason
    Why one decision was taken, naming the cluster object (``source``) it
    came from, e.g. ``dataset fs_data``, ``application grp_web``, ``preset
    hipaa``. Every generated decision carries at least one.
consistency group
    The tiers of one application, backed up as one consistent set: writes are
    quiesced top-down (front end first) and data is restored bottom-up
    (storage first). Each tier lists the protected data sets it owns, and
    optionally its quiescers (:class:`TierQuiescer`): how the tier is held
    still while the backup takes its cut.
excluded
    A data set the policy deliberately leaves out, with the reason.

A policy is generated from a :class:`~haprotect.model.topology.Topology` by
:mod:`haprotect.policy`, saved as YAML for an administrator to review and
edit, and loaded back into these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from haprotect.model.topology import Replication

API_VERSION = "haprotect/v1"
KIND = "Policy"


class Priority(StrEnum):
    """Which items run first when the scheduler must choose."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class ReadRole(StrEnum):
    """Which node a backup reads the data from.

    ``standby``: a replica that is not primary (replicated data).
    ``primary``: the node where the data is primary.
    ``active``: the node that has shared failover storage mounted now.
    ``local``: the one node that holds local data.
    """

    STANDBY = "standby"
    PRIMARY = "primary"
    ACTIVE = "active"
    LOCAL = "local"


class Fallback(StrEnum):
    """What a standby read does when no standby is within the lag limit."""

    PRIMARY = "primary"
    WAIT = "wait"
    FAIL = "fail"


class Decision(StrEnum):
    """The decisions a reason can explain."""

    INCLUDE = "include"
    EXCLUDE = "exclude"
    PRIORITY = "priority"
    SCHEDULE = "schedule"
    WHERE = "where"
    RETENTION = "retention"
    COPIES = "copies"
    READ_FROM = "read_from"
    GROUP = "group"
    QUIESCE_ORDER = "quiesce_order"
    QUIESCE = "quiesce"
    RESTORE_ORDER = "restore_order"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why one decision of the policy was taken, naming the cluster object it came from."""

    decision: Decision
    because: str
    source: str


@dataclass(frozen=True, slots=True)
class Retention:
    """How many snapshots to keep per period, as ``restic forget --keep-*``.

    ``keep_last`` keeps the newest N whatever their age; it is written out
    only when set, so policies from before it read and compare the same.
    """

    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    #: last among the fields, so that positional construction keeps its meaning
    keep_last: int = 0

    FIELDS = (
        "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly",
    )  # fmt: skip

    def as_dict(self) -> dict[str, int]:
        return {
            name: getattr(self, name)
            for name in self.FIELDS
            if name != "keep_last" or self.keep_last
        }


@dataclass(frozen=True, slots=True)
class ReadFrom:
    """``nodes`` are the candidates at generation time; a plan re-checks them."""

    role: ReadRole
    nodes: tuple[str, ...] = ()
    max_lag_seconds: int | None = None
    fallback: Fallback | None = None


@dataclass(frozen=True, slots=True)
class What:
    """The data set an item protects, as the cluster described it.

    ``backing`` is the data set it lies on (a database directory inside a
    filesystem, a filesystem on a DRBD device), so that a backup can tell
    that one item's data is inside another's and not copy it twice.
    """

    kind: str
    resource: str
    ha: bool
    replication: Replication
    location: dict[str, str] = field(default_factory=dict)
    backing: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """The protection of one data set (see the module's terms)."""

    cluster: str
    dataset: str
    what: What
    schedule: str
    where: str
    retention: Retention
    copies: int
    priority: Priority
    read_from: ReadFrom
    reasons: tuple[Reason, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.cluster, self.dataset)


@dataclass(frozen=True, slots=True)
class TierQuiescer:
    """One quiescer of a tier: a plug-in name, its limits and its own options.

    ``on_error`` is ``fail`` (the backup of the group aborts, every tier
    resumed) or ``continue`` (recorded; the run ends PartiallyFailed).
    ``options`` are the quiescer's (strings, numbers, booleans, argument
    lists, mappings), checked by the quiescer itself before anything is held.
    """

    kind: str
    timeout_seconds: float = 30.0
    lease_seconds: float = 120.0
    on_error: str = "fail"
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupTier:
    """One tier of a consistency group: what it owns, what it depends on, how it is held."""

    name: str
    datasets: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    #: Held in this order when the tier is quiesced; empty: the tier is not held.
    quiesce: tuple[TierQuiescer, ...] = ()


@dataclass(frozen=True, slots=True)
class ConsistencyGroup:
    """Tiers are listed bottom-up, as in the application they come from."""

    name: str
    cluster: str
    tiers: tuple[GroupTier, ...]
    quiesce_order: tuple[str, ...]
    restore_order: tuple[str, ...]
    reasons: tuple[Reason, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.cluster, self.name)


@dataclass(frozen=True, slots=True)
class Excluded:
    """A data set the policy deliberately leaves out, with the reason and where it came from."""

    cluster: str
    dataset: str
    kind: str
    because: str
    source: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.cluster, self.dataset)


@dataclass(frozen=True, slots=True)
class RulesUsed:
    """The inputs a policy was generated with, for whoever regenerates it."""

    file: str | None = None
    presets: tuple[str, ...] = ()
    #: the rules said ``auto_approve``: the service approves the policy as it is applied
    auto_approve: bool = False


@dataclass(frozen=True, slots=True)
class Metadata:
    """``topology_fingerprint`` covers the cluster's definition, not placement."""

    name: str
    source: str
    clusters: tuple[str, ...]
    generated_at: datetime
    topology_fingerprint: str
    generator: str = "haprotect"
    rules: RulesUsed = field(default_factory=RulesUsed)


@dataclass(frozen=True, slots=True)
class Policy:
    """A whole policy as its YAML holds it: items, consistency groups and exclusions."""

    metadata: Metadata
    repository: str
    items: tuple[Item, ...] = ()
    groups: tuple[ConsistencyGroup, ...] = ()
    excluded: tuple[Excluded, ...] = ()

    def item(self, dataset: str, cluster: str | None = None) -> Item:
        for item in self.items:
            if item.dataset == dataset and cluster in (None, item.cluster):
                return item
        raise KeyError(dataset)

    def group_of(self, item: Item) -> tuple[ConsistencyGroup, GroupTier] | None:
        for group in self.groups:
            if group.cluster != item.cluster:
                continue
            for tier in group.tiers:
                if item.dataset in tier.datasets:
                    return group, tier
        return None
