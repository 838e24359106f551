"""The one place where a validated topology file becomes a :class:`Topology`.

Besides copying fields, this checks references (nodes, data sets, tiers,
resources), fills in the defaults that depend on other fields, derives the
resources the file does not declare, and orders tiers bottom-up. Every error
names the file, the line and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from haprotect.errors import HaprotectError
from haprotect.model.topology import (
    Application,
    Cluster,
    DataSet,
    Dependency,
    Node,
    Replication,
    Resource,
    Role,
    Tier,
    Topology,
)
from haprotect.redact import redact_value
from haprotect.sources.topology_file.spec import (
    ApplicationSpec,
    ClusterSpec,
    DataSetSpec,
    TierSpec,
    TopologyFileSpec,
)
from haprotect.sources.topology_file.tiers import order_tiers, tier_dependencies
from haprotect.yamlsource import Loc, YamlDocument

#: The agent of a resource that the file does not declare.
MANUAL_AGENT = "manual"


def to_topology(doc: YamlDocument, spec: TopologyFileSpec) -> Topology:
    names = ((("clusters", i, "name"), c.name) for i, c in enumerate(spec.clusters))
    _check_unique(doc, names, "cluster")
    return Topology(
        tuple(
            _ClusterBuilder(doc, ("clusters", i), cluster).build()
            for i, cluster in enumerate(spec.clusters)
        )
    )


class _ClusterBuilder:
    def __init__(self, doc: YamlDocument, loc: Loc, spec: ClusterSpec) -> None:
        self.doc = doc
        self.loc = loc
        self.spec = spec
        self.nodes = {node.name for node in spec.nodes}
        #: every resource of the cluster, in the order the model lists them
        self.resources: dict[str, Resource] = {}
        #: resource id -> loc of the data set entry it was derived from
        self.derived_from: dict[str, Loc] = {}

    def build(self) -> Cluster:
        spec = self.spec
        nodes = ((self._at("nodes", i, "name"), n.name) for i, n in enumerate(spec.nodes))
        _check_unique(self.doc, nodes, "node")
        self._declared_resources()
        ids = ((self._at("datasets", i, "id"), d.id) for i, d in enumerate(spec.datasets))
        _check_unique(self.doc, ids, "data set")
        datasets = {d.id: self._dataset(i, d) for i, d in enumerate(spec.datasets)}
        self._check_backing()
        apps = (
            (self._at("applications", i, "name"), a.name) for i, a in enumerate(spec.applications)
        )
        _check_unique(self.doc, apps, "application")
        dependencies: list[Dependency] = []
        applications = []
        for index, app in enumerate(spec.applications):
            application = self._application(index, app, datasets)
            applications.append(application)
            dependencies.extend(tier_dependencies(application.tiers))
        dependencies.extend(self._declared_dependencies())
        return Cluster(
            name=spec.name,
            manager=spec.manager,
            nodes=tuple(Node(n.name, n.online) for n in spec.nodes),
            resources=tuple(self.resources.values()),
            datasets=tuple(datasets.values()),
            applications=tuple(applications),
            dependencies=tuple(dict.fromkeys(dependencies)),
        )

    def _at(self, *parts: str | int) -> Loc:
        return (*self.loc, *parts)

    def _error(self, loc: Loc, message: str) -> HaprotectError:
        return self.doc.error_at(loc, message)

    def _check_node(self, loc: Loc, name: str) -> None:
        if name not in self.nodes:
            known = ", ".join(sorted(self.nodes))
            raise self._error(loc, f"unknown node {name!r} (nodes: {known})")

    def _declared_resources(self) -> None:
        ids = ((self._at("resources", i, "id"), r.id) for i, r in enumerate(self.spec.resources))
        _check_unique(self.doc, ids, "resource")
        for index, res in enumerate(self.spec.resources):
            loc = self._at("resources", index)
            for node in res.placement:
                self._check_node((*loc, "placement", node), node)
            self.resources[res.id] = Resource(res.id, res.agent, res.parent, dict(res.placement))

    def _dataset(self, index: int, ds: DataSetSpec) -> DataSet:
        loc = self._at("datasets", index)
        self._check_dataset_nodes(loc, ds)
        ha = ds.ha if ds.ha is not None else ds.replication is not Replication.LOCAL
        if ha and ds.replication is Replication.LOCAL:
            raise self._error(
                (*loc, "ha"), "local data cannot be HA: set replication to shared or replicated"
            )
        resource_id = ds.resource or ds.id
        self._derive_resource(loc, ds, resource_id)
        return DataSet(
            id=ds.id,
            kind=ds.kind,
            resource=resource_id,
            location={key: redact_value(key, value) for key, value in ds.location.items()},
            ha=ha,
            replication=ds.replication,
            primary=ds.primary,
            standbys=tuple(ds.standbys),
            why=(self._why(loc, ds, ha),),
            backing=ds.backing,
        )

    def _check_dataset_nodes(self, loc: Loc, ds: DataSetSpec) -> None:
        if ds.primary is not None:
            self._check_node((*loc, "primary"), ds.primary)
        if ds.standbys and ds.replication is Replication.LOCAL:
            raise self._error((*loc, "standbys"), "local data has no standbys")
        seen: set[str] = set()
        for index, standby in enumerate(ds.standbys):
            at = (*loc, "standbys", index)
            self._check_node(at, standby)
            if standby == ds.primary:
                raise self._error(at, f"{standby!r} is the primary, so it cannot be a standby")
            if standby in seen:
                raise self._error(at, f"duplicate standby {standby!r}")
            seen.add(standby)

    def _check_backing(self) -> None:
        """Each ``backing`` names another data set of the cluster, and none lies on itself."""
        specs = self.spec.datasets
        index = {ds.id: i for i, ds in enumerate(specs)}
        for i, ds in enumerate(specs):
            if ds.backing is None:
                continue
            loc = self._at("datasets", i, "backing")
            if ds.backing == ds.id:
                raise self._error(loc, f"data set {ds.id!r} cannot lie on itself")
            if ds.backing not in index:
                known = ", ".join(sorted(d.id for d in specs if d.id != ds.id)) or "none"
                raise self._error(loc, f"unknown data set {ds.backing!r} (data sets: {known})")
        for i, ds in enumerate(specs):
            chain = [ds.id]
            below = ds.backing
            while below is not None and below not in chain:
                chain.append(below)
                below = specs[index[below]].backing
            if below == ds.id:
                raise self._error(
                    self._at("datasets", i, "backing"),
                    "backing cycle: " + " -> ".join([*chain, ds.id]) + " (each lies on the next)",
                )

    def _derive_resource(self, loc: Loc, ds: DataSetSpec, resource_id: str) -> None:
        placement = _placement(ds)
        other = self.derived_from.get(resource_id)
        if other is None:
            if resource_id not in self.resources:
                self.resources[resource_id] = Resource(resource_id, MANUAL_AGENT, None, placement)
                self.derived_from[resource_id] = loc
            return
        if self.resources[resource_id].placement != placement:
            where = (*loc, "resource") if ds.resource else (*loc, "id")
            raise self._error(
                where,
                f"resource {resource_id!r} would run elsewhere than for the data set at "
                f"line {self.doc.line_of(other)}: give it the same primary, standbys "
                "and replication, or declare the resource under resources",
            )

    def _why(self, loc: Loc, ds: DataSetSpec, ha: bool) -> str:
        """Why ``ha`` is what it is: the line that said so, or that implied it."""
        what = "HA" if ha else "not HA"
        origin = self.doc.origin
        if ds.ha is not None:
            line = self.doc.line_of((*loc, "ha"))
            return f"declared {what} in topology file {origin} line {line}"
        line = self.doc.line_of((*loc, "replication"))
        return (
            f"{what} by default: declared {ds.replication.value} "
            f"in topology file {origin} line {line}"
        )

    def _application(
        self, index: int, app: ApplicationSpec, datasets: Mapping[str, DataSet]
    ) -> Application:
        loc = self._at("applications", index)
        names = (((*loc, "tiers", i, "name"), t.name) for i, t in enumerate(app.tiers))
        _check_unique(self.doc, names, "tier")
        tier_names = {t.name for t in app.tiers}
        claims = _TierClaims(self.doc)
        tiers: list[Tier] = []
        for t_index, spec in enumerate(app.tiers):
            t_loc = (*loc, "tiers", t_index)
            for d_index, below in enumerate(spec.depends_on):
                if below not in tier_names:
                    known = ", ".join(sorted(tier_names))
                    raise self._error(
                        (*t_loc, "depends_on", d_index),
                        f"unknown tier {below!r} (tiers of {app.name}: {known})",
                    )
            resources = self._tier_resources(t_loc, spec, datasets, claims)
            tiers.append(
                Tier(
                    spec.name,
                    tuple(resources),
                    tuple(dict.fromkeys(spec.datasets)),
                    tuple(dict.fromkeys(spec.depends_on)),
                )
            )
        return Application(app.name, order_tiers(self.doc, loc, tiers))

    def _tier_resources(
        self, loc: Loc, spec: TierSpec, datasets: Mapping[str, DataSet], claims: _TierClaims
    ) -> list[str]:
        """The tier's resources, then those of its data sets; each new one is derived."""
        owned = [((*loc, "resources", i), r) for i, r in enumerate(spec.resources)]
        for index, ds_id in enumerate(spec.datasets):
            ds_loc = (*loc, "datasets", index)
            if ds_id not in datasets:
                known = ", ".join(sorted(datasets)) or "none"
                raise self._error(ds_loc, f"unknown data set {ds_id!r} (data sets: {known})")
            claims.claim(ds_loc, "data set", ds_id, spec.name)
            owned.append((ds_loc, datasets[ds_id].resource))
        for r_loc, resource in owned:
            claims.claim(r_loc, "resource", resource, spec.name)
            if resource not in self.resources:
                self.resources[resource] = Resource(resource, MANUAL_AGENT)
        return list(dict.fromkeys(r for _, r in owned))

    def _declared_dependencies(self) -> list[Dependency]:
        out: list[Dependency] = []
        for index, dep in enumerate(self.spec.dependencies):
            for key, resource in (("from", dep.source), ("to", dep.target)):
                if resource not in self.resources:
                    raise self._error(
                        self._at("dependencies", index, key), f"unknown resource {resource!r}"
                    )
            out.append(Dependency(dep.source, dep.target, dep.kind))
        return out


def _placement(ds: DataSetSpec) -> dict[str, Role]:
    """Where the resource of a data set runs, from its primary and standbys.

    Replicated data runs promoted on the primary (started if it has no
    standbys) and unpromoted on each standby; shared and local data run
    started on the primary only (a shared standby is a node the storage can
    move to, not one it runs on).
    """
    placement: dict[str, Role] = {}
    replicated = ds.replication is Replication.REPLICATED
    if ds.primary is not None:
        promoted = replicated and bool(ds.standbys)
        placement[ds.primary] = Role.PROMOTED if promoted else Role.STARTED
    if replicated:
        placement.update(dict.fromkeys(ds.standbys, Role.UNPROMOTED))
    return placement


class _TierClaims:
    """Which tier of one application each resource and data set belongs to (one only)."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.owner: dict[tuple[str, str], str] = {}

    def claim(self, loc: Loc, what: str, item: str, tier: str) -> None:
        owner = self.owner.setdefault((what, item), tier)
        if owner != tier:
            raise self.doc.error_at(loc, f"{what} {item!r} is already in tier {owner!r}")


def _check_unique(doc: YamlDocument, items: Iterable[tuple[Loc, str]], what: str) -> None:
    first_line: dict[str, int | None] = {}
    for loc, name in items:
        if name in first_line:
            raise doc.error_at(loc, f"duplicate {what} {name!r} (first at line {first_line[name]})")
        first_line[name] = doc.line_of(loc)
