"""Where each resource runs now: the main.cf joined with the cluster's state.

A resource is online on a system where ``hares -state`` says ONLINE; for a
resource it says nothing about, where its group is ONLINE (``hagrp -state``
or ``hastatus -sum``) and the resource is enabled. With no state at all,
nothing is online and every system of a group's SystemList is a candidate.
"""

from __future__ import annotations

from haprotect.model.topology import Node, Role
from haprotect.sources.vcs.config import MainCf, ServiceGroup
from haprotect.sources.vcs.status import VcsState, is_online


class Placement:
    """Online systems per resource, and each group's candidate systems."""

    def __init__(self, config: MainCf, state: VcsState) -> None:
        self.config = config
        self.state = state
        self._resources_known = {r for r, _ in state.resources}

    def online(self, resource_name: str) -> list[str]:
        resource = self.config.resources[resource_name]
        group = self.config.groups[resource.group]
        if resource_name in self._resources_known:
            found = [
                s for (r, s), value in self.state.resources.items()
                if r == resource_name and is_online(value)
            ]  # fmt: skip
        elif resource.enabled():
            found = [
                s for (g, s), value in self.state.groups.items()
                if g == group.name and is_online(value)
            ]  # fmt: skip
        else:
            found = []
        order = {s: i for i, s in enumerate(group.systems())}
        return sorted(found, key=lambda s: (order.get(s, len(order)), s))

    def roles(self, resource_name: str) -> dict[str, Role]:
        return {system: Role.STARTED for system in self.online(resource_name)}

    def candidates(self, group: ServiceGroup) -> list[str]:
        """The group's systems by priority where it may come online."""
        known = self.state.systems
        return [
            s for s in group.systems()
            if group.enabled_on(s) and (not known or known.get(s, "").upper() == "RUNNING")
        ]  # fmt: skip

    def nodes(self) -> tuple[Node, ...]:
        names = list(self.config.systems)
        for group in self.config.groups.values():
            names += group.systems()
        names += list(self.state.systems)
        names += [s for g, s in self.state.groups if g in self.config.groups]
        names += [s for r, s in self.state.resources if r in self.config.resources]
        return tuple(
            Node(name, self.state.systems.get(name, "").upper() == "RUNNING")
            for name in dict.fromkeys(names)
        )
