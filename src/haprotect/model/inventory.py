"""How to reach the nodes of a cluster, and where their data is when it differs.

Terms:

inventory
    What the cluster configuration does not say: the host name or address
    that reaches each node, whether the node's files are on this machine
    (``local``), and per data set the location parameters that differ on
    that node (``pgport``, ``pgdata``, ``directory``...). In a real cluster
    locations are the same on every node and the inventory is often empty;
    the lab runs both of its "nodes" on one machine, with different ports
    and data directories, and writes its own (``<lab>/inventory.yaml``).
quiescers
    Per tier of a consistency group (``group/tier`` or
    ``cluster/group/tier``), quiescers added to the policy's for this
    place: what only the site knows, such as the admin URL of a web tier's
    gate or of an application's flush endpoint, which may change whenever
    the tier is redeployed (the lab writes its own at every ``lab up``).
default
    A node the inventory does not name is reached by its name, has no
    overrides, and its files are local only when its name is this machine's
    host name (``this_host``).

The file format and its loader are in :mod:`haprotect.plan.inventory`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from haprotect.model.policy import TierQuiescer


@dataclass(frozen=True, slots=True)
class NodeAccess:
    """One node: ``locations`` maps a data set (``id`` or ``cluster/id``) to overrides."""

    name: str
    host: str
    local: bool
    locations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def overrides(self, cluster: str, dataset: str) -> Mapping[str, str]:
        found = self.locations.get(f"{cluster}/{dataset}")
        if found is None:
            found = self.locations.get(dataset, {})
        return found


@dataclass(frozen=True, slots=True)
class Inventory:
    """The inventory (see the module's terms); a node it does not name gets the defaults."""

    nodes: tuple[NodeAccess, ...] = ()
    this_host: str = ""
    origin: str | None = None  #: the file it was read from, if any
    #: ``group/tier`` or ``cluster/group/tier`` -> quiescers added to the policy's
    quiesce: Mapping[str, tuple[TierQuiescer, ...]] = field(default_factory=dict)

    def quiescers(self, cluster: str, group: str, tier: str) -> tuple[TierQuiescer, ...]:
        """The inventory's quiescers of one tier of a group (none when it names none)."""
        found = self.quiesce.get(f"{cluster}/{group}/{tier}")
        if found is None:
            found = self.quiesce.get(f"{group}/{tier}", ())
        return found

    def access(self, node: str) -> NodeAccess:
        """The node as the inventory describes it, or the default."""
        for entry in self.nodes:
            if entry.name == node:
                return entry
        return NodeAccess(node, node, node == self.this_host)

    def location(
        self, node: str, cluster: str, dataset: str, base: Mapping[str, str]
    ) -> dict[str, str]:
        """``base`` (the cluster's location) with the node's overrides applied."""
        return {**base, **self.access(node).overrides(cluster, dataset)}
