"""Applications and tiers of a VCS cluster: service groups and what ties them.

A tier is a service group (VCS fails over, and an administrator thinks in,
whole groups). One group needs another (a tier edge) when:

* it declares an *online* group dependency on it (``requires group X online
  local firm``, any location and kind): X must be online first;
* its storage lies on a resource of the other group (a Mount on a disk
  group or volume imported there), or on a shared disk group the other
  group activates (a CFSfsckd's or CVMVolDg's ActivationMode), or, for a
  Mount on a VxVM device no resource imports, on CVM: the group running
  CVMCluster, which imports shared disk groups.

An *offline* group dependency (``offline local``: never on the same system)
is anti-affinity, not an order between tiers, and ties nothing. An
application is a connected set of groups holding at least one data set,
named after its top group (one no other group of it needs); its tiers are
listed bottom-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from haprotect.model.topology import Application, DataSet, Dependency, Tier
from haprotect.sources.vcs.agents import data_type
from haprotect.sources.vcs.config import MainCf, ServiceGroup
from haprotect.sources.vcs.storage import StorageIndex, parse_device, provider


@dataclass(slots=True)
class GroupGraph:
    """Which groups need which (tier edges), and the resource-level dependencies."""

    needs: dict[str, list[str]] = field(default_factory=dict)
    dependencies: list[Dependency] = field(default_factory=list)

    def add(self, parent: str, child: str) -> None:
        if parent != child and child not in self.needs.setdefault(parent, []):
            self.needs[parent].append(child)


def build_graph(config: MainCf, index: StorageIndex) -> GroupGraph:
    graph = GroupGraph()
    for group in config.groups.values():
        for source, target, _ in group.links:
            graph.dependencies.append(Dependency(source, target, "requires"))
    for dep in config.group_dependencies:
        if dep.category != "online":
            continue
        graph.add(dep.parent, dep.child)
        for source in _bottoms(config.groups[dep.parent]):
            for target in _tops(config.groups[dep.child]):
                graph.dependencies.append(Dependency(source, target, f"group {dep.words}"))
    for resource in config.resources.values():
        agent = data_type(resource.type)
        if agent is None or agent.device_param is None:
            continue
        device = parse_device(
            resource.attrs.text(agent.device_param) or "", resource.attrs.text("FSType"), index
        )
        if device is None:
            continue
        below = provider(device, index)
        if below is not None:
            if below.group != resource.group:
                graph.add(resource.group, below.group)
                graph.dependencies.append(Dependency(resource.name, below.name, "storage"))
            continue
        if device.manager != "vxvm":
            continue
        for other in index.activated_by.get(device.container) or index.cvm_groups:
            if other != resource.group:
                graph.add(resource.group, other)
                for target in _tops(config.groups[other]):
                    graph.dependencies.append(Dependency(resource.name, target, "storage"))
    return graph


def infer_applications(
    config: MainCf, graph: GroupGraph, datasets: list[DataSet]
) -> list[Application]:
    names = list(config.groups)
    component = _components(names, graph)
    datasets_of: dict[str, list[str]] = {}
    for dataset in datasets:
        owner = config.resources[dataset.resource].group
        datasets_of.setdefault(owner, []).append(dataset.id)
    members: dict[int, list[str]] = {}
    for name in names:
        members.setdefault(component[name], []).append(name)
    apps: list[Application] = []
    for groups in members.values():
        if not any(datasets_of.get(g) for g in groups):
            continue
        ordered = _bottom_up(groups, graph)
        needed = {c for g in groups for c in graph.needs.get(g, ())}
        top = next(g for g in groups if g not in needed) if set(groups) - needed else groups[0]
        placed: set[str] = set()
        tiers: list[Tier] = []
        for name in ordered:
            group = config.groups[name]
            below = tuple(c for c in graph.needs.get(name, ()) if c in placed)
            tiers.append(
                Tier(name, tuple(group.resources), tuple(datasets_of.get(name, ())), below)
            )
            placed.add(name)
        apps.append(Application(top, tuple(tiers)))
    return apps


def _bottom_up(groups: list[str], graph: GroupGraph) -> list[str]:
    """Every group after those it needs (file order among equals; a cycle is cut in file order)."""
    remaining = list(groups)
    done: list[str] = []
    while remaining:
        ready = next(
            (
                g
                for g in remaining
                if all(c in done or c not in groups for c in graph.needs.get(g, ()))
            ),
            remaining[0],
        )
        done.append(ready)
        remaining.remove(ready)
    return done


def _components(names: list[str], graph: GroupGraph) -> dict[str, int]:
    index = {n: i for i, n in enumerate(names)}
    parent = list(range(len(names)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for source, targets in graph.needs.items():
        for target in targets:
            a, b = find(index[source]), find(index[target])
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {n: find(i) for n, i in index.items()}


def _tops(group: ServiceGroup) -> list[str]:
    """Resources no other resource of the group requires (the top of its tree)."""
    required = {target for _, target, _ in group.links}
    return [r for r in group.resources if r not in required]


def _bottoms(group: ServiceGroup) -> list[str]:
    """Resources that require no other resource of the group (the bottom of its tree)."""
    requiring = {source for source, _, _ in group.links}
    return [r for r in group.resources if r not in requiring]
