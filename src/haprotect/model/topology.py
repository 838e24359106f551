"""What a cluster makes highly available, as the rest of haprotect sees it.

Terms:

resource
    One primitive the cluster manager runs (clone instance suffixes such as
    ``:0`` are stripped). ``parent`` is the group, clone or bundle that holds
    it; ``placement`` says on which nodes it runs now and in which role;
    ``settings`` holds the few agent parameters a policy decision reads.
data set
    Data a resource owns: a filesystem, a replicated block device, a database
    directory. ``location`` uses the agent's own parameter names. ``ha`` is
    true when the cluster keeps the data available across node failures;
    ``replication`` says how (``shared`` storage moved between nodes,
    ``replicated`` to standbys, or ``local`` to one node). ``backing`` is the
    id of the data set this one lies on: the DRBD device under a filesystem,
    the filesystem holding a database directory, the volume group under a
    filesystem; ``None`` when it lies on no other data set of the cluster.
application, tier
    A set of resources tied together by the cluster's dependency graph,
    split into layered tiers (storage, database, application, front end);
    a tier ``depends_on`` the tiers below it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """What a resource does on a node: promoted (a primary), unpromoted (a standby) or started."""

    PROMOTED = "promoted"
    UNPROMOTED = "unpromoted"
    STARTED = "started"


class Replication(StrEnum):
    """How the cluster keeps a data set available (see the module's terms)."""

    SHARED = "shared"
    REPLICATED = "replicated"
    LOCAL = "local"


class Manager(StrEnum):
    """The cluster manager a cluster was discovered from (``file``: a topology file)."""

    PACEMAKER = "pacemaker"
    VCS = "vcs"
    PATRONI = "patroni"
    KUBERNETES = "kubernetes"
    FILE = "file"


class Layer(StrEnum):
    """Tiers of an application, from the bottom up."""

    STORAGE = "storage"
    DATABASE = "database"
    APPLICATION = "application"
    FRONTEND = "frontend"

    @property
    def rank(self) -> int:
        return list(Layer).index(self)


@dataclass(frozen=True, slots=True)
class Node:
    """A cluster node, and whether it was online at discovery."""

    name: str
    online: bool


@dataclass(frozen=True, slots=True)
class Resource:
    """One primitive the cluster manager runs (see the module's terms)."""

    id: str
    agent: str
    parent: str | None = None
    placement: dict[str, Role] = field(default_factory=dict)
    #: the agent's parameters that haprotect's choices read (an HAProxy's ``conffile``),
    #: in the agent's own spelling; empty for most agents
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DataSet:
    """Data a resource owns (see the module's terms)."""

    id: str
    kind: str
    resource: str
    location: dict[str, str]
    ha: bool
    replication: Replication
    primary: str | None = None
    standbys: tuple[str, ...] = ()
    why: tuple[str, ...] = ()
    #: the id of the data set this one lies on (the DRBD device under a
    #: filesystem, the filesystem holding a database directory, the volume
    #: group under a filesystem), or ``None``
    backing: str | None = None


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier of an application: its resources, their data sets, the tiers below it."""

    name: str
    resources: tuple[str, ...]
    datasets: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Application:
    """Tiers are listed bottom-up: every tier comes after those it depends on."""

    name: str
    tiers: tuple[Tier, ...]


@dataclass(frozen=True, slots=True)
class Dependency:
    """``source`` needs ``target``: it starts after it, or runs where it runs."""

    source: str
    target: str
    kind: str


@dataclass(frozen=True, slots=True)
class Cluster:
    """One cluster as discovered: its nodes, resources, data sets, applications, dependencies."""

    name: str
    manager: Manager
    nodes: tuple[Node, ...] = ()
    resources: tuple[Resource, ...] = ()
    datasets: tuple[DataSet, ...] = ()
    applications: tuple[Application, ...] = ()
    dependencies: tuple[Dependency, ...] = ()

    def dataset(self, dataset_id: str) -> DataSet:
        for ds in self.datasets:
            if ds.id == dataset_id:
                return ds
        raise KeyError(dataset_id)


@dataclass(frozen=True, slots=True)
class Topology:
    """Every cluster discovered: what a policy is generated from and a plan is built on."""

    clusters: tuple[Cluster, ...]
