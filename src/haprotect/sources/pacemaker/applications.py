"""Applications and their tiers, from the cluster's dependency graph.

An application is a connected part of the dependency graph (groups, order
and colocation constraints) that holds data worth protecting; a tag that
names resources makes a named application of them and everything tied to
them. Its primitives split into layered tiers (storage, database,
application, front end), listed bottom-up; a tier depends on the lower
tiers its resources need through a group, order or colocation.
"""

from __future__ import annotations

from haprotect.model.topology import Application, DataSet, Layer, Tier
from haprotect.sources.pacemaker.agents import is_fencing, layer_of
from haprotect.sources.pacemaker.cib import CibConfig
from haprotect.sources.pacemaker.graph import DependencyGraph


def infer_applications(
    config: CibConfig, graph: DependencyGraph, datasets: list[DataSet]
) -> list[Application]:
    order = {p: i for i, p in enumerate(config.primitives)}
    members = [p for p, prim in config.primitives.items() if not is_fencing(prim.agent)]
    component = _components(members, graph)
    with_data = {d.resource for d in datasets}
    apps: list[Application] = []
    claimed: set[int] = set()
    for tag, refs in config.tags.items():
        tagged = {p for ref in refs for p in config.primitives_of(ref) if p in component}
        roots = {component[p] for p in tagged}
        if not tagged:
            continue
        claimed |= roots
        primitives = sorted((p for p in members if component[p] in roots), key=order.__getitem__)
        apps.append(_application(tag, primitives, config, graph, datasets))
    groups: dict[int, list[str]] = {}
    for primitive in members:
        groups.setdefault(component[primitive], []).append(primitive)
    for root, primitives in groups.items():
        if root in claimed or not with_data.intersection(primitives):
            continue
        apps.append(_application(_name(primitives, config), primitives, config, graph, datasets))
    return apps


def _components(members: list[str], graph: DependencyGraph) -> dict[str, int]:
    """Union-find over the undirected dependency graph; value = component root index."""
    index = {p: i for i, p in enumerate(members)}
    parent = list(range(len(members)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for dep in graph.dependencies:
        a, b = index.get(dep.source), index.get(dep.target)
        if a is not None and b is not None:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {p: find(i) for p, i in index.items()}


def _top(primitive: str, config: CibConfig) -> str:
    top = primitive
    for container in config.ancestors(primitive):
        top = container.id
    return top


def _name(primitives: list[str], config: CibConfig) -> str:
    """Named after the top-level resource of its highest layer."""
    highest = max(primitives, key=lambda p: (layer_of(config.primitives[p].type).rank, -1))
    tops = {_top(p, config) for p in primitives}
    return next(iter(tops)) if len(tops) == 1 else _top(highest, config)


def _application(
    name: str,
    primitives: list[str],
    config: CibConfig,
    graph: DependencyGraph,
    datasets: list[DataSet],
) -> Application:
    rank = {layer: i for i, layer in enumerate(Layer)}
    layer_of_primitive = {p: layer_of(config.primitives[p].type) for p in primitives}
    present = sorted(set(layer_of_primitive.values()), key=rank.__getitem__)
    datasets_of: dict[str, list[str]] = {}
    for dataset in datasets:
        if dataset.resource in layer_of_primitive:
            datasets_of.setdefault(dataset.resource, []).append(dataset.id)
    tiers: list[Tier] = []
    for layer in present:
        resources = tuple(p for p in primitives if layer_of_primitive[p] is layer)
        needed = {
            needed_layer
            for r in resources
            for t in graph.needs.get(r, ())
            if (needed_layer := layer_of_primitive.get(t)) is not None
            and rank[needed_layer] < rank[layer]
        }
        tiers.append(
            Tier(
                name=layer.value,
                resources=resources,
                datasets=tuple(d for r in resources for d in datasets_of.get(r, ())),
                depends_on=tuple(n.value for n in sorted(needed, key=rank.__getitem__)),
            )
        )
    return Application(name, tuple(tiers))


__all__ = ["Layer", "infer_applications"]
