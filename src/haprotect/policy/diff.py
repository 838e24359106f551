"""Semantic differences between two policies.

Items are matched by cluster and data set, groups by cluster and name,
excluded data sets by cluster and data set, so reordering a file changes
nothing. Reasons, the generation time and the generator are not compared:
they explain or stamp a policy, they do not change what it protects. A changed
``metadata.topology_fingerprint`` means the cluster's definition changed
between the two generations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from haprotect.model.policy import ConsistencyGroup, Item, Policy
from haprotect.redact import redact_entry

Value = str | int | bool | list[str] | dict[str, str] | None


class ChangeKind(StrEnum):
    """What happened to the thing a change names; for ``changed``, ``field`` says what."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class Change:
    """``section`` is ``metadata``, ``spec``, ``item``, ``group`` or ``excluded``."""

    section: str
    key: str
    kind: ChangeKind
    field: str = ""
    old: Value = None
    new: Value = None


def diff_policies(old: Policy, new: Policy) -> tuple[Change, ...]:
    changes: list[Change] = []
    changes += _fields("metadata", "metadata", _metadata_fields(old), _metadata_fields(new))
    changes += _fields(
        "spec", "spec", {"repository": old.repository}, {"repository": new.repository}
    )
    changes += _keyed(
        "item",
        {_key(i.cluster, i.dataset): _item_fields(i) for i in old.items},
        {_key(i.cluster, i.dataset): _item_fields(i) for i in new.items},
    )
    changes += _keyed(
        "group",
        {_key(g.cluster, g.name): _group_fields(g) for g in old.groups},
        {_key(g.cluster, g.name): _group_fields(g) for g in new.groups},
    )
    changes += _keyed(
        "excluded",
        {_key(e.cluster, e.dataset): {"kind": e.kind} for e in old.excluded},
        {_key(e.cluster, e.dataset): {"kind": e.kind} for e in new.excluded},
    )
    return tuple(changes)


def _key(cluster: str, name: str) -> str:
    return f"{cluster}/{name}"


def _keyed(
    section: str,
    old: Mapping[str, Mapping[str, Value]],
    new: Mapping[str, Mapping[str, Value]],
) -> list[Change]:
    changes: list[Change] = []
    for key in sorted(old.keys() - new.keys()):
        changes.append(Change(section, key, ChangeKind.REMOVED))
    for key in sorted(new.keys() - old.keys()):
        changes.append(Change(section, key, ChangeKind.ADDED))
    for key in sorted(old.keys() & new.keys()):
        changes += _fields(section, key, old[key], new[key])
    return changes


def _fields(
    section: str, key: str, old: Mapping[str, Value], new: Mapping[str, Value]
) -> list[Change]:
    changes: list[Change] = []
    for name in [*old, *(n for n in new if n not in old)]:
        before, after = old.get(name), new.get(name)
        if before != after:
            changes.append(Change(section, key, ChangeKind.CHANGED, name, before, after))
    return changes


def _metadata_fields(policy: Policy) -> dict[str, Value]:
    m = policy.metadata
    return {
        "name": m.name,
        "source": m.source,
        "clusters": list(m.clusters),
        "topology_fingerprint": m.topology_fingerprint,
        "rules.file": m.rules.file,
        "rules.presets": list(m.rules.presets),
        "rules.auto_approve": m.rules.auto_approve,
    }


def _item_fields(item: Item) -> dict[str, Value]:
    fields: dict[str, Value] = {
        "what.kind": item.what.kind,
        "what.resource": item.what.resource,
        "what.ha": item.what.ha,
        "what.replication": item.what.replication.value,
        "what.location": dict(item.what.location),
        "what.backing": item.what.backing,
        "priority": item.priority.value,
        "schedule": item.schedule,
        "where": item.where,
    }
    for name, keep in item.retention.as_dict().items():
        fields[f"retention.{name}"] = keep
    read = item.read_from
    fields.update(
        {
            "copies": item.copies,
            "read_from.role": read.role.value,
            "read_from.nodes": list(read.nodes),
            "read_from.max_lag_seconds": read.max_lag_seconds,
            "read_from.fallback": read.fallback.value if read.fallback else None,
        }
    )
    return fields


def _group_fields(group: ConsistencyGroup) -> dict[str, Value]:
    fields: dict[str, Value] = {"tiers": [t.name for t in group.tiers]}
    for tier in group.tiers:
        fields[f"tiers.{tier.name}.datasets"] = list(tier.datasets)
        fields[f"tiers.{tier.name}.resources"] = list(tier.resources)
        fields[f"tiers.{tier.name}.depends_on"] = list(tier.depends_on)
        fields[f"tiers.{tier.name}.quiesce"] = [
            f"{q.kind} ({q.on_error}, {q.timeout_seconds:g}s, lease {q.lease_seconds:g}s"
            + "".join(f", {k}={redact_entry(k, v)}" for k, v in sorted(q.options.items()))
            + ")"
            for q in tier.quiesce
        ]
    fields["quiesce_order"] = list(group.quiesce_order)
    fields["restore_order"] = list(group.restore_order)
    return fields


def change_to_json(change: Change) -> dict[str, Value]:
    return {
        "section": change.section,
        "key": change.key,
        "kind": change.kind.value,
        "field": change.field or None,
        "old": change.old,
        "new": change.new,
    }


def describe(change: Change) -> str:
    """One line: ``+ item c1/fs_new``, ``~ item c1/fs_data: schedule '0 * * * *' -> ...``."""
    subject = change.section if change.section == change.key else f"{change.section} {change.key}"
    if change.kind is ChangeKind.ADDED:
        return f"+ {subject}"
    if change.kind is ChangeKind.REMOVED:
        return f"- {subject}"
    return f"~ {subject}: {change.field} {_show(change.old)} -> {_show(change.new)}"


def _show(value: Value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return repr(value)
    return str(value).lower() if isinstance(value, bool) else str(value)
