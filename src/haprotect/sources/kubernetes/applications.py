"""Applications and their tiers, from labels and the dependency graph.

The ``app.kubernetes.io/part-of`` label names an application: the objects
that carry it (on themselves or their pod template) and the unlabelled
objects tied to them (a Service, an operator's StatefulSet) make it. Objects
with no such label fall into connected parts of the dependency graph
(:mod:`haprotect.sources.kubernetes.graph`, and operators' children with
their cluster); each part that holds data is an application, named after
its highest tier's top object.

Each object falls into a layer: the ``app.kubernetes.io/component`` label
when it names one (database, cache, backend, frontend, storage...), else an
operator's PostgreSQL cluster and its children are the database, a
container image of a known kind decides (postgres, mysql, redis... are the
database; nginx, haproxy, envoy... the front end), a LoadBalancer or
NodePort Service is the front end and another Service sits in the layer of
what it selects; the rest is the application. Tiers are listed bottom-up and
a tier depends on the lower tiers its objects need.
"""

from __future__ import annotations

from collections.abc import Iterable

from haprotect.model.topology import Application, DataSet, Dependency, Layer, Tier
from haprotect.sources.kubernetes.units import Unit

PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"

_COMPONENT_WORDS: dict[Layer, tuple[str, ...]] = {
    Layer.STORAGE: ("storage", "volume", "nfs", "objectstore"),
    Layer.DATABASE: (
        "database",
        "db",
        "postgres",
        "postgresql",
        "mysql",
        "mariadb",
        "mongodb",
        "redis",
        "cache",
        "primary",
        "replica",
        "datastore",
        "queue",
        "broker",
    ),
    Layer.FRONTEND: (
        "frontend",
        "front-end",
        "web",
        "ui",
        "proxy",
        "ingress",
        "gateway",
        "loadbalancer",
        "load-balancer",
        "lb",
        "nginx",
        "haproxy",
    ),
}
_IMAGE_WORDS: dict[Layer, tuple[str, ...]] = {
    Layer.DATABASE: (
        "postgres",
        "postgresql",
        "mysql",
        "mariadb",
        "mongo",
        "mongodb",
        "redis",
        "valkey",
        "memcached",
        "etcd",
        "elasticsearch",
        "opensearch",
        "cassandra",
        "kafka",
        "rabbitmq",
        "zookeeper",
        "spilo",
    ),
    Layer.FRONTEND: ("nginx", "haproxy", "envoy", "traefik", "httpd", "caddy", "varnish"),
}


def layer_of(unit: Unit, by_id: dict[str, Unit], deps: list[Dependency]) -> Layer:
    component = unit.labels.get(COMPONENT, "").lower()
    for layer, words in _COMPONENT_WORDS.items():
        if component in words:
            return layer
    if unit.cluster is not None:
        return Layer.DATABASE
    if unit.parent is not None and unit.parent in by_id and unit.parent != unit.id:
        parent = by_id[unit.parent]
        if parent.parent is None:
            return layer_of(parent, by_id, deps)
    if unit.service is not None:
        if unit.service.type in ("LoadBalancer", "NodePort"):
            return Layer.FRONTEND
        targets = [by_id[d.target] for d in deps if d.source == unit.id and d.kind == "selects"]
        layers = [layer_of(t, by_id, deps) for t in targets if t.service is None]
        return min(layers, key=lambda layer: layer.rank) if layers else Layer.APPLICATION
    if unit.workload is not None:
        for layer, words in _IMAGE_WORDS.items():
            if any(_image_name(image) in words for image in unit.workload.images):
                return layer
    return Layer.APPLICATION


def _image_name(image: str) -> str:
    """``docker.io/bitnami/redis:7.2@sha256:...`` -> ``redis``."""
    name = image.partition("@")[0].rsplit("/", 1)[-1]
    return name.partition(":")[0].lower()


def infer_applications(
    units: list[Unit], deps: list[Dependency], datasets: list[DataSet]
) -> list[Application]:
    by_id = {u.id: u for u in units}
    layers = {u.id: layer_of(u, by_id, deps) for u in units}
    edges = [(d.source, d.target) for d in deps]
    edges += [(u.id, u.parent) for u in units if u.parent in by_id and u.parent is not None]
    component = _components([u.id for u in units], edges)
    part_of = {u.id: _part_of(u, by_id) for u in units}
    with_data = {d.resource for d in datasets}
    parts: dict[int, list[str]] = {}
    for unit in units:
        parts.setdefault(component[unit.id], []).append(unit.id)
    apps: list[Application] = []
    for members in parts.values():
        values = sorted({v for m in members if (v := part_of[m])})
        if values:
            for value in values:
                chosen = [m for m in members if part_of[m] in (value, "")]
                apps.append(_application(value, chosen, layers, deps, datasets))
        elif with_data.intersection(members):
            apps.append(_application(_name(members, layers), members, layers, deps, datasets))
    return apps


def _part_of(unit: Unit, by_id: dict[str, Unit]) -> str:
    value = unit.labels.get(PART_OF, "")
    if not value and unit.parent is not None and unit.parent in by_id:
        value = by_id[unit.parent].labels.get(PART_OF, "")
    return value


def _components(ids: list[str], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    index = {u: i for i, u in enumerate(ids)}
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a_id, b_id in edges:
        a, b = index.get(a_id), index.get(b_id)
        if a is not None and b is not None:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {u: find(i) for u, i in index.items()}


def _name(members: list[str], layers: dict[str, Layer]) -> str:
    """The highest layer's first object that is not a Service (else its first)."""
    ranked = sorted(members, key=lambda m: (-layers[m].rank, "/service/" in m))
    return ranked[0]


def _application(
    name: str,
    members: list[str],
    layers: dict[str, Layer],
    deps: list[Dependency],
    datasets: list[DataSet],
) -> Application:
    needs: dict[str, set[str]] = {}
    for dep in deps:
        needs.setdefault(dep.source, set()).add(dep.target)
    present = sorted({layers[m] for m in members}, key=lambda layer: layer.rank)
    tiers: list[Tier] = []
    for layer in present:
        resources = tuple(m for m in members if layers[m] is layer)
        needed = {
            layers[t]
            for r in resources
            for t in needs.get(r, ())
            if t in layers and t in members and layers[t].rank < layer.rank
        }
        tiers.append(
            Tier(
                name=layer.value,
                resources=resources,
                datasets=tuple(d.id for d in datasets if d.resource in resources),
                depends_on=tuple(n.value for n in sorted(needed, key=lambda x: x.rank)),
            )
        )
    return Application(name, tuple(tiers))
