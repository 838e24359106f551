"""Where resources run now: the cluster's state, apart from its definition.

Two readers produce a :class:`ClusterState`: ``crm_mon``'s XML output (the
authority), and a pure-Python reading of the CIB status section for machines
without Pacemaker's tools. Both key placements by primitive id with clone
instance suffixes (``:0``) stripped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from haprotect.model.topology import Node, Role


@dataclass(frozen=True, slots=True)
class ClusterState:
    """Where resources run now, and in which role; what either status reader gives."""

    nodes: tuple[Node, ...]
    #: resource id -> node name -> role there
    placement: dict[str, dict[str, Role]] = field(default_factory=dict)


def strip_instance(resource_id: str) -> str:
    """``db:1`` -> ``db``: clone instance numbers are not part of the identity."""
    head, sep, tail = resource_id.rpartition(":")
    return head if sep and tail.isdigit() else resource_id
