"""The lab's inventory, ``<lab>/inventory.yaml``: how haprotect reaches its nodes.

A real cluster's nodes are different machines with the same data paths; the
lab's two "nodes" share this machine, so their PostgreSQL data directories
and ports differ (the CIB carries node1's in the data set's location, as the
Pacemaker source reports the highest-scored rule set). The inventory says,
per node: the host (127.0.0.1), that its files are local, and the
PostgreSQL data set's ``pgdata`` and ``pgport`` on that node; with a
volume (:mod:`haprotect.lab.volume`), the shared filesystem's ``cut_dir``. ``lab up``
and ``lab failover`` write it; ``haprotect backup --inventory`` and
``haprotect restore --inventory`` read it (format: docs/engine.md).

It also gives the ``shop`` group's upper tiers their quiescers, because
their admin URLs are the lab's and change at every ``lab up``: the front
end an ``http-gate`` (the gate's admin API, ``gate_admin_url``) and the
application an ``app-flush`` (``POST /admin/flush`` of the app). The policy
keeps what the cluster configuration tells (the database's ``postgresql``;
with ``--web-gate haproxy``, the front end's ``haproxy``, from the CIB's
``ocf:heartbeat:haproxy`` resource, so the inventory adds no gate).
"""

from __future__ import annotations

from typing import Any

import yaml

from haprotect.lab.cib import FILESYSTEM, GROUP, PGSQL
from haprotect.lab.state import LabState, lab_paths

INVENTORY_FILE = "inventory.yaml"


def render_inventory(state: LabState) -> bytes:
    nodes: dict[str, Any] = {
        node.name: {
            "host": "127.0.0.1",
            "local": True,
            "locations": _locations(state, node.pgdata, node.port),
        }
        for node in state.nodes
    }
    document = {
        "apiVersion": "haprotect/v1",
        "kind": "Inventory",
        "nodes": nodes,
        "quiesce": quiescers(state),
    }
    header = (
        f"# haprotect inventory of the lab in {state.dir}: how to reach each node, and\n"
        "# where the PostgreSQL data set is on it; the quiescers of the shop's web and\n"
        "# application tiers. Written by 'haprotect lab up'.\n"
    )
    return (header + yaml.safe_dump(document, sort_keys=False)).encode()


def _locations(state: LabState, pgdata: str, port: int) -> dict[str, dict[str, str]]:
    found = {PGSQL: {"pgdata": pgdata, "pgport": str(port)}}
    cuts = lab_paths(state.root, state.volume).cuts
    if cuts is not None:
        found[FILESYSTEM] = {"cut_dir": str(cuts)}  # on the volume: cut by reflink
    return found


def quiescers(state: LabState) -> dict[str, list[dict[str, Any]]]:
    """The front end's gate and the application's flush, by ``group/tier``."""
    found: dict[str, list[dict[str, Any]]] = {}
    if state.gate_admin_url is not None:
        found[f"{GROUP}/frontend"] = [
            {
                "kind": "http-gate",
                "timeout_seconds": 30.0,
                "lease_seconds": 120.0,
                "on_error": "fail",
                "options": {"admin_url": state.gate_admin_url},
            }
        ]
    found[f"{GROUP}/application"] = [
        {
            "kind": "app-flush",
            "timeout_seconds": 30.0,
            "lease_seconds": 120.0,
            "on_error": "fail",
            "options": {"url": f"{state.app_url}/admin/flush"},
        }
    ]
    return found
