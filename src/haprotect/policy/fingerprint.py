"""A fingerprint of a topology's definition, kept in a policy to detect drift.

It covers what the cluster is configured to do (nodes, resources, data sets,
applications, dependencies) and leaves out where things run now (placement,
which node is primary, which nodes are online, and the ``why`` texts that
mention them), so that a failover does not look like drift but a new data
set, a changed mount point, a data set moved onto other storage (its
``backing``) or a new tier does. A data set that lies on no other is hashed
as before ``backing`` existed, so policies of clusters without layered
storage keep their fingerprint. Lists are sorted by their ids so that the
order a source happens to list things in does not matter.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from haprotect.model.topology import Topology
from haprotect.model.topology_json import topology_to_json


def topology_fingerprint(topology: Topology) -> str:
    data = topology_to_json(topology)
    clusters = sorted((_definition(c) for c in data["clusters"]), key=lambda c: str(c["name"]))
    text = json.dumps(clusters, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _definition(cluster: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": cluster["name"],
        "manager": cluster["manager"],
        "nodes": sorted(n["name"] for n in cluster["nodes"]),
        "resources": sorted(
            ({k: v for k, v in r.items() if k != "placement"} for r in cluster["resources"]),
            key=lambda r: str(r["id"]),
        ),
        "datasets": sorted((_dataset(d) for d in cluster["datasets"]), key=lambda d: str(d["id"])),
        "applications": sorted(cluster["applications"], key=lambda a: str(a["name"])),
        "dependencies": sorted(
            cluster["dependencies"], key=lambda d: (str(d["from"]), str(d["to"]), str(d["kind"]))
        ),
    }


def _dataset(dataset: dict[str, Any]) -> dict[str, Any]:
    """Without placement and ``why``; ``backing`` only when the data set has one."""
    left_out = ("primary", "standbys", "why", "backing")
    definition = {k: v for k, v in dataset.items() if k not in left_out}
    if dataset.get("backing") is not None:
        definition["backing"] = dataset["backing"]
    return definition
