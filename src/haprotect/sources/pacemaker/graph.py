"""Primitive-level dependencies of a Pacemaker cluster.

Groups chain their members (each needs the one before it); constraints are
expanded from groups, clones, tags and templates to the primitives inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from haprotect.model.topology import Dependency
from haprotect.sources.pacemaker.agents import is_fencing
from haprotect.sources.pacemaker.cib import CibConfig


@dataclass(slots=True)
class DependencyGraph:
    """Which primitives need which, both ways, from groups and constraints."""

    dependencies: list[Dependency] = field(default_factory=list)
    #: primitive -> primitives it needs (direct)
    needs: dict[str, set[str]] = field(default_factory=dict)
    #: primitive -> primitives that need it (direct)
    needed_by: dict[str, set[str]] = field(default_factory=dict)
    #: (dependent, required) pairs whose constraint asks for the promoted role
    needs_promoted: set[tuple[str, str]] = field(default_factory=set)

    def add(self, source: str, target: str, kind: str) -> None:
        if source == target:
            return
        needs = self.needs.setdefault(source, set())
        if target in needs:
            return
        needs.add(target)
        self.needed_by.setdefault(target, set()).add(source)
        self.dependencies.append(Dependency(source, target, kind))

    def neighbours(self, primitive: str) -> set[str]:
        return self.needs.get(primitive, set()) | self.needed_by.get(primitive, set())


def build_graph(config: CibConfig) -> DependencyGraph:
    graph = DependencyGraph()
    for container in config.containers.values():
        if container.kind == "group":
            members = [m for m in container.members if m in config.primitives]
            for earlier, later in pairwise(members):
                graph.add(later, earlier, "group")
    for constraint in config.constraints:
        for dependent, required in constraint.pairs:
            sources = _expand(config, dependent)
            if constraint.kind == "ticket":
                for source in sources:
                    graph.add(source, required, "ticket")
                continue
            targets = _expand(config, required)
            for source in sources:
                for target in targets:
                    graph.add(source, target, constraint.kind)
                    if constraint.required_role == "Promoted":
                        graph.needs_promoted.add((source, target))
    return graph


def _expand(config: CibConfig, resource_id: str) -> list[str]:
    return [
        p for p in config.primitives_of(resource_id) if not is_fencing(config.primitives[p].agent)
    ]
