"""Plans for engine tests: a small application on local directories, planned with the
real movers' probes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from haprotect.model.inventory import Inventory
from haprotect.model.plan import Plan
from haprotect.model.policy import Policy
from haprotect.model.topology import Topology
from haprotect.movers import get_mover, mover_name_for
from haprotect.plan import build
from haprotect.testing.builders import app, cluster, shared, tier, topology


def site(root: Path) -> Topology:
    """Cluster ``c1``, app ``site``: tier storage (``root/data``), tier frontend
    (``root/static``) that depends on it."""
    return topology(
        cluster(
            "c1",
            datasets=(
                shared("data", location={"directory": str(root / "data")}),
                shared("static", location={"directory": str(root / "static")}),
            ),
            applications=(app("site", tier("storage", ["data"]), tier("frontend", ["static"])),),
        )
    )


def plan_with_movers(policy: Policy, topo: Topology, inventory: Inventory, now: datetime) -> Plan:
    """The plan of ``policy`` for ``topo``, each node checked by its item's mover."""
    return build(
        policy,
        topo,
        inventory,
        mover_for=mover_name_for,
        probe=lambda item, node: get_mover(item.mover or "").probe(item, node, inventory),
        now=now,
    )
