"""The stable JSON form of a topology, ``haprotect.topology/v1``.

Documented in docs/topology-json.md; tests pin it with golden files. Keys
and their order are part of the contract.
"""

from __future__ import annotations

from typing import Any

from haprotect.model.topology import (
    Application,
    Cluster,
    DataSet,
    Dependency,
    Layer,
    Manager,
    Node,
    Replication,
    Resource,
    Role,
    Tier,
    Topology,
)

SCHEMA = "haprotect.topology/v1"


def topology_to_json(topology: Topology) -> dict[str, Any]:
    return {"schema": SCHEMA, "clusters": [_cluster(c) for c in topology.clusters]}


def _resource(r: Resource) -> dict[str, Any]:
    """A resource; ``settings`` only when it has some, so most topologies read as before."""
    found: dict[str, Any] = {
        "id": r.id,
        "agent": r.agent,
        "parent": r.parent,
        "placement": {node: role.value for node, role in r.placement.items()},
    }
    if r.settings:
        found["settings"] = dict(r.settings)
    return found


def _cluster(c: Cluster) -> dict[str, Any]:
    return {
        "name": c.name,
        "manager": c.manager.value,
        "nodes": [{"name": n.name, "online": n.online} for n in c.nodes],
        "resources": [_resource(r) for r in c.resources],
        "datasets": [_dataset(d) for d in c.datasets],
        "applications": [
            {
                "name": a.name,
                "tiers": [
                    {
                        "name": t.name,
                        "resources": list(t.resources),
                        "datasets": list(t.datasets),
                        "depends_on": list(t.depends_on),
                    }
                    for t in a.tiers
                ],
            }
            for a in c.applications
        ],
        "dependencies": [
            {"from": d.source, "to": d.target, "kind": d.kind} for d in c.dependencies
        ],
    }


def _dataset(d: DataSet) -> dict[str, Any]:
    return {
        "id": d.id,
        "kind": d.kind,
        "resource": d.resource,
        "location": dict(d.location),
        "ha": d.ha,
        "replication": d.replication.value,
        "primary": d.primary,
        "standbys": list(d.standbys),
        "why": list(d.why),
        "backing": d.backing,
    }


def topology_from_json(data: dict[str, Any]) -> Topology:
    """Inverse of :func:`topology_to_json` (used for copies kept in policies)."""
    if data.get("schema") != SCHEMA:
        raise ValueError(f"expected schema {SCHEMA}, got {data.get('schema')!r}")
    return Topology(tuple(_cluster_from(c) for c in data["clusters"]))


def _cluster_from(c: dict[str, Any]) -> Cluster:
    return Cluster(
        name=c["name"],
        manager=Manager(c["manager"]),
        nodes=tuple(Node(n["name"], bool(n["online"])) for n in c["nodes"]),
        resources=tuple(
            Resource(
                r["id"],
                r["agent"],
                r["parent"],
                {node: Role(role) for node, role in r["placement"].items()},
                dict(r.get("settings", {})),
            )
            for r in c["resources"]
        ),
        datasets=tuple(
            DataSet(
                id=d["id"],
                kind=d["kind"],
                resource=d["resource"],
                location=dict(d["location"]),
                ha=bool(d["ha"]),
                replication=Replication(d["replication"]),
                primary=d["primary"],
                standbys=tuple(d["standbys"]),
                why=tuple(d["why"]),
                backing=d.get("backing"),
            )
            for d in c["datasets"]
        ),
        applications=tuple(
            Application(
                a["name"],
                tuple(
                    Tier(
                        t["name"],
                        tuple(t["resources"]),
                        tuple(t["datasets"]),
                        tuple(t["depends_on"]),
                    )
                    for t in a["tiers"]
                ),
            )
            for a in c["applications"]
        ),
        dependencies=tuple(Dependency(d["from"], d["to"], d["kind"]) for d in c["dependencies"]),
    )


__all__ = ["SCHEMA", "Layer", "topology_from_json", "topology_to_json"]
