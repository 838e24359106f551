"""The lab's inventory, ``<lab>/inventory.yaml``: how haprotect reaches its nodes.

A real cluster's nodes are different machines with the same data paths; the
lab's two "nodes" share this machine, so their PostgreSQL data directories
and ports differ (the CIB carries node1's in the data set's location, as the
Pacemaker source reports the highest-scored rule set). The inventory says,
per node: the host (127.0.0.1), that its files are local, and the
PostgreSQL data set's ``pgdata`` and ``pgport`` on that node. ``lab up``
and ``lab failover`` write it; ``haprotect backup --inventory`` and
``haprotect restore --inventory`` read it (format: docs/engine.md).
"""

from __future__ import annotations

from typing import Any

import yaml

from haprotect.lab.cib import PGSQL
from haprotect.lab.state import LabState

INVENTORY_FILE = "inventory.yaml"


def render_inventory(state: LabState) -> bytes:
    nodes: dict[str, Any] = {
        node.name: {
            "host": "127.0.0.1",
            "local": True,
            "locations": {PGSQL: {"pgdata": node.pgdata, "pgport": str(node.port)}},
        }
        for node in state.nodes
    }
    document = {"apiVersion": "haprotect/v1", "kind": "Inventory", "nodes": nodes}
    header = (
        f"# haprotect inventory of the lab in {state.dir}: how to reach each node, and\n"
        "# where the PostgreSQL data set is on it. Written by 'haprotect lab up'.\n"
    )
    return (header + yaml.safe_dump(document, sort_keys=False)).encode()
