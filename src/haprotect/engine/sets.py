"""Snapshot sets in a repository: the metadata format, written and read back.

A set is the snapshots one backup run took of one application (or of one
data set planned alone): one snapshot per tier and data set, plus one of the
cluster's topology as the run discovered it. Every snapshot of a set carries
the whole set's description, so that listing the repository's snapshots is
enough to rebuild every set, with no catalog:

```json
{"format": "haprotect.set/v1",
 "part": "item",                                  // or "topology"
 "application": "shop", "dataset": "fs_data", "tier": "storage",  // for retention's groups
 "set": {"id": "3f2a9c0d1e2b", "name": "shop", "cluster": "c1", "application": "shop",
         "started": "2025-01-01T02:00:00+00:00",
         "policy": {"name": "c1", "fingerprint": "sha256:...", "source": "pacemaker+file:///..."},
         "topology_fingerprint": "sha256:...",
         "tiers": [{"name": "storage", "depends_on": [], "datasets": ["fs_data"]}],
         "quiesce_order": ["storage"], "restore_order": ["storage"],
         "items": [{"tier": "storage", "dataset": "fs_data"}],
         "topology": "<id of the topology snapshot>"},  // absent in that snapshot itself
 "item": {"tier": "storage", "dataset": "fs_data", "cluster": "c1", "kind": "filesystem",
          "resource": "fs_data", "mover": "files", "depends_on": [],
          "node": "node2", "host": "node2", "role": "standby", "primary": "node1",
          "fallback_used": false, "why": ["role standby: node1 is primary", "..."],
          "restore_node": "node1", "location": {...}, "cluster_location": {...},
          "path_key": "directory", "started": "...", "details": {...},
          "problems": []}}
```

A set's snapshots record their data under stable paths, whatever staging
or cut directory it was read from: ``/haprotect/<cluster>/datasets/<data
set>`` for an item, ``/haprotect/<cluster>/topology/<set name>.json`` for
the topology. So every backup of a data set has the same paths (the next
one finds the last as its parent), and retention groups them together.

The spec, with every field, is in docs/engine.md. Readers ignore unknown
fields and skip snapshots whose metadata is not a set's.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from haprotect.errors import UsageError
from haprotect.model.inventory import NodeAccess
from haprotect.model.plan import (
    Plan,
    PlanItem,
    PlanSet,
    SetItem,
    SetTier,
    SnapshotSet,
    SourceChoice,
)
from haprotect.model.policy import ReadRole
from haprotect.model.snapshot import JSONValue, Snapshot
from haprotect.model.topology import Replication, Topology
from haprotect.movers import vanished
from haprotect.repo.errors import SnapshotNotFound

FORMAT = "haprotect.set/v1"
ITEM = "item"
TOPOLOGY = "topology"
LATEST = "latest"
#: where a set's snapshots record their data
ROOT = "/haprotect"


def item_path(cluster: str, dataset: str) -> str:
    """The stable path an item's snapshot records its data under."""
    return f"{ROOT}/{_component(cluster)}/datasets/{_component(dataset)}"


def topology_path(cluster: str, set_name: str) -> str:
    """The stable path of a set's topology file."""
    return f"{ROOT}/{_component(cluster)}/topology/{_component(set_name)}.json"


def _component(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.@+=-]", "_", name)
    return safe if safe.strip(".") else "_" + safe


def new_set_id() -> str:
    return secrets.token_hex(6)


def set_block(plan: Plan, pset: PlanSet, set_id: str, started: datetime) -> dict[str, JSONValue]:
    """What every snapshot of the set says about the set."""
    return {
        "id": set_id,
        "name": pset.name,
        "cluster": pset.cluster,
        "application": pset.application,
        "started": started.isoformat(),
        "policy": {
            "name": plan.policy_name,
            "fingerprint": plan.policy_fingerprint,
            "source": plan.policy_source,
        },
        "topology_fingerprint": plan.topology_fingerprint,
        "tiers": [
            {
                "name": t.name,
                "depends_on": list(t.depends_on),
                "datasets": [i.dataset for i in t.items],
            }
            for t in pset.tiers
        ],
        "quiesce_order": list(pset.quiesce_order),
        "restore_order": list(pset.restore_order),
        "items": [{"tier": i.tier, "dataset": i.dataset} for i in pset.items],
    }


def set_tags(block: Mapping[str, JSONValue], tier: str | None, dataset: str | None) -> list[str]:
    tags = ["haprotect-set", f"set={block['id']}"]
    if block.get("application"):
        tags.append(f"app={block['application']}")
    if tier is not None and dataset is not None:
        tags += [f"tier={tier}", f"dataset={dataset}"]
    return tags


def topology_metadata(block: Mapping[str, JSONValue]) -> dict[str, JSONValue]:
    return {
        "format": FORMAT,
        "part": TOPOLOGY,
        "application": block.get("application"),
        "dataset": None,
        "tier": None,
        "set": dict(block),
    }


def restore_node(topology: Topology, item: PlanItem, read_from: str) -> str:
    """Where a restore to the original place writes: the primary for replicated data."""
    for cluster in topology.clusters:
        if cluster.name != item.cluster:
            continue
        try:
            dataset = cluster.dataset(item.dataset)
        except KeyError:
            break
        if dataset.replication is Replication.REPLICATED and item.source.primary:
            return item.source.primary
    return read_from


def node_role(choice: SourceChoice) -> str:
    """What the node read was: ``standby``, ``primary`` (also after a fallback), ``active``..."""
    if choice.role is ReadRole.STANDBY and choice.node == choice.primary:
        return "primary"
    return choice.role.value


def item_metadata(
    block: Mapping[str, JSONValue],
    item: PlanItem,
    choice: SourceChoice,
    access: NodeAccess,
    location: Mapping[str, str],
    restore_to: str,
    started: datetime,
    path_key: str | None,
    details: Mapping[str, JSONValue],
    problems: Sequence[str] = (),
) -> dict[str, JSONValue]:
    """An item snapshot's metadata; ``problems`` say why it misses data (then it is partial)."""
    body: dict[str, JSONValue] = {
        "tier": item.tier,
        "dataset": item.dataset,
        "cluster": item.cluster,
        "kind": item.kind,
        "resource": item.resource,
        "mover": item.mover,
        "depends_on": list(item.depends_on),
        "node": choice.node,
        "host": access.host,
        "role": node_role(choice),
        "read_role": choice.role.value,
        "primary": choice.primary,
        "fallback_used": choice.fallback_used,
        "why": list(choice.reasons),
        "restore_node": restore_to,
        "location": dict(location),
        "cluster_location": dict(item.cluster_location),
        "path_key": path_key,
        "started": started.isoformat(),
        "details": dict(details),
        "problems": list(problems),
    }
    return {
        "format": FORMAT,
        "part": ITEM,
        "application": block.get("application"),
        "dataset": item.dataset,
        "tier": item.tier,
        "set": dict(block),
        "item": body,
    }


# -- reading sets back ---------------------------------------------------------


def read_sets(snapshots: Iterable[Snapshot]) -> list[SnapshotSet]:
    """Every set the snapshots describe, oldest first."""
    blocks: dict[str, Mapping[str, Any]] = {}
    items: dict[str, list[SetItem]] = {}
    topologies: dict[str, str] = {}
    for snapshot in snapshots:
        meta = snapshot.metadata
        block = meta.get("set")
        if meta.get("format") != FORMAT or not isinstance(block, Mapping):
            continue
        set_id = str(block.get("id", ""))
        if not set_id:
            continue
        blocks.setdefault(set_id, block)
        if meta.get("part") == TOPOLOGY:
            topologies[set_id] = snapshot.id
        body = meta.get("item")
        if meta.get("part") == ITEM and isinstance(body, Mapping):
            parsed = _item(snapshot, body)
            if parsed is not None:
                items.setdefault(set_id, []).append(parsed)
    sets = [
        _set(set_id, block, items.get(set_id, []), topologies.get(set_id))
        for set_id, block in blocks.items()
    ]
    return sorted(sets, key=lambda s: (s.started, s.id))


def find_set(sets: Sequence[SnapshotSet], ref: str, application: str | None = None) -> SnapshotSet:
    """The set whose id is or starts with ``ref``; ``latest``: the newest complete one
    (of ``application``). A partial set is only ever chosen by its id."""
    pool = [s for s in sets if application is None or s.application == application]
    if ref == LATEST:
        of = f" of {application}" if application else ""
        if not pool:
            raise SnapshotNotFound(f"no snapshot set{of} here")
        complete = [s for s in pool if s.complete]
        if not complete:
            newest = pool[-1]
            raise SnapshotNotFound(
                f"no complete snapshot set{of}: the newest, {newest.id} "
                f"({newest.started:%Y-%m-%d %H:%M:%S} UTC), is partial "
                f"({'; '.join(newest.partial_because)})",
                hint=f"restore what it holds by its id: haprotect restore {newest.id} --repo URL",
            )
        return complete[-1]
    matches = [s for s in pool if s.id.startswith(ref.lower())]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SnapshotNotFound(
            f"no snapshot set {ref}", hint="'haprotect snapshots --repo URL' lists them"
        )
    raise UsageError(f"set id {ref} is ambiguous ({len(matches)} match)", hint="give more of it")


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _mapping(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _time(value: Any, default: datetime) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return default


def _item(snapshot: Snapshot, body: Mapping[str, Any]) -> SetItem | None:
    try:
        tier, dataset = str(body["tier"]), str(body["dataset"])
    except KeyError:
        return None
    stats = snapshot.stats
    details = body.get("details")
    return SetItem(
        snapshot_id=snapshot.id,
        tier=tier,
        dataset=dataset,
        cluster=str(body.get("cluster", "")),
        kind=str(body.get("kind", "")),
        mover=str(body.get("mover", "")),
        depends_on=_strings(body.get("depends_on")),
        node=str(body["node"]) if body.get("node") else None,
        role=str(body.get("role", "")),
        why=_strings(body.get("why")),
        location=_mapping(body.get("location")),
        cluster_location=_mapping(body.get("cluster_location")),
        path_key=str(body["path_key"]) if body.get("path_key") else None,
        root=snapshot.paths[0] if snapshot.paths else "/",
        restore_node=str(body["restore_node"]) if body.get("restore_node") else None,
        started=_time(body.get("started"), snapshot.time),
        finished=snapshot.time + timedelta(seconds=stats.duration_s),
        details=dict(details) if isinstance(details, Mapping) else {},
        errors=sum(1 for e in snapshot.errors if not vanished(e)),
        files=stats.files_new + stats.files_changed + stats.files_unchanged,
        bytes=stats.bytes_total,
        problems=_strings(body.get("problems")),
    )


def _set(
    set_id: str, block: Mapping[str, Any], items: list[SetItem], topology: str | None
) -> SnapshotSet:
    policy = block.get("policy") if isinstance(block.get("policy"), Mapping) else {}
    assert isinstance(policy, Mapping)
    tiers = tuple(
        SetTier(str(t.get("name")), _strings(t.get("depends_on")), _strings(t.get("datasets")))
        for t in block.get("tiers", [])
        if isinstance(t, Mapping)
    )
    planned = tuple(
        (str(p.get("tier")), str(p.get("dataset")))
        for p in block.get("items", [])
        if isinstance(p, Mapping)
    )
    named = {t.name for t in tiers}
    extra = dict.fromkeys(i.tier for i in items if i.tier not in named)
    tiers += tuple(SetTier(name) for name in extra)
    started = _time(block.get("started"), min((i.started for i in items), default=datetime.min))
    restore = _complete_order(_strings(block.get("restore_order")), tiers)
    quiesce = _complete_order(_strings(block.get("quiesce_order")), tiers[::-1])
    order = {name: n for n, name in enumerate(restore)}
    items.sort(key=lambda i: (order.get(i.tier, len(order)), i.dataset))
    return SnapshotSet(
        id=set_id,
        name=str(block.get("name", set_id)),
        cluster=str(block.get("cluster", "")),
        application=str(block["application"]) if block.get("application") else None,
        started=started,
        policy_name=str(policy.get("name", "")),
        policy_fingerprint=str(policy.get("fingerprint", "")),
        tiers=tiers,
        quiesce_order=quiesce,
        restore_order=restore,
        planned=planned,
        items=tuple(items),
        topology_snapshot=topology,
    )


def _complete_order(order: tuple[str, ...], tiers: tuple[SetTier, ...]) -> tuple[str, ...]:
    """``order`` without unknown or repeated tiers, then any tier it leaves out."""
    known = [t.name for t in tiers]
    kept = list(dict.fromkeys(name for name in order if name in known))
    return tuple(kept + [name for name in known if name not in kept])
