"""The one place a policy crosses between model types and its document form.

:func:`to_data` gives the plain, ordered data that is written as YAML (or
JSON); :func:`from_doc` turns a validated :class:`PolicyDoc` back into the
model. An item's ``where`` is written only when it differs from
``spec.repository`` and is read back as the repository when absent, so that
changing the repository in one place moves every item that follows it.
``what.backing`` is written only when the data set lies on another, and a
tier's ``quiesce`` only when the tier has quiescers. Credentials in a
``what.location`` someone wrote into the file are redacted as they are read,
as a source redacts them (:mod:`haprotect.redact`).
"""

from __future__ import annotations

from typing import Any

from haprotect.model.policy import (
    API_VERSION,
    KIND,
    ConsistencyGroup,
    Decision,
    Excluded,
    Fallback,
    GroupTier,
    Item,
    Metadata,
    Policy,
    Priority,
    ReadFrom,
    ReadRole,
    Reason,
    Retention,
    RulesUsed,
    TierQuiescer,
    What,
)
from haprotect.model.topology import Replication
from haprotect.policy.schema import PolicyDoc, QuiescerDoc, ReasonDoc
from haprotect.redact import redact_value


def _rules_used(rules: RulesUsed) -> dict[str, Any]:
    data: dict[str, Any] = {"file": rules.file, "presets": list(rules.presets)}
    if rules.auto_approve:
        data["auto_approve"] = True
    return data


def to_data(policy: Policy) -> dict[str, Any]:
    m = policy.metadata
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": m.name,
            "source": m.source,
            "clusters": list(m.clusters),
            "generated_at": m.generated_at,
            "topology_fingerprint": m.topology_fingerprint,
            "generator": m.generator,
            "rules": _rules_used(m.rules),
        },
        "spec": {
            "repository": policy.repository,
            "items": [_item(i, policy.repository) for i in policy.items],
            "groups": [_group(g) for g in policy.groups],
            "excluded": [_excluded(e) for e in policy.excluded],
        },
    }


def _item(item: Item, repository: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "dataset": item.dataset,
        "cluster": item.cluster,
        "what": _what(item.what),
        "priority": item.priority.value,
        "schedule": item.schedule,
    }
    if item.where != repository:
        data["where"] = item.where
    data["retention"] = item.retention.as_dict()
    data["copies"] = item.copies
    data["read_from"] = _read_from(item.read_from)
    data["reasons"] = [_reason(r) for r in item.reasons]
    return data


def _what(what: What) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": what.kind,
        "resource": what.resource,
        "ha": what.ha,
        "replication": what.replication.value,
        "location": dict(what.location),
    }
    if what.backing is not None:
        data["backing"] = what.backing
    return data


def _read_from(read: ReadFrom) -> dict[str, Any]:
    data: dict[str, Any] = {"role": read.role.value, "nodes": list(read.nodes)}
    if read.max_lag_seconds is not None:
        data["max_lag_seconds"] = read.max_lag_seconds
    if read.fallback is not None:
        data["fallback"] = read.fallback.value
    return data


def _reason(reason: Reason) -> dict[str, str]:
    return {"decision": reason.decision.value, "because": reason.because, "source": reason.source}


def _group(group: ConsistencyGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "cluster": group.cluster,
        "tiers": [_tier(t) for t in group.tiers],
        "quiesce_order": list(group.quiesce_order),
        "restore_order": list(group.restore_order),
        "reasons": [_reason(r) for r in group.reasons],
    }


def _tier(tier: GroupTier) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": tier.name,
        "datasets": list(tier.datasets),
        "resources": list(tier.resources),
        "depends_on": list(tier.depends_on),
    }
    if tier.quiesce:
        data["quiesce"] = [_quiescer(q) for q in tier.quiesce]
    return data


def _quiescer(q: TierQuiescer) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": q.kind,
        "timeout_seconds": q.timeout_seconds,
        "lease_seconds": q.lease_seconds,
        "on_error": q.on_error,
    }
    if q.options:
        data["options"] = {
            k: list(v) if isinstance(v, (list, tuple)) else dict(v) if isinstance(v, dict) else v
            for k, v in q.options.items()
        }
    return data


def quiescer_from(q: QuiescerDoc) -> TierQuiescer:
    """A validated quiescer (of a policy tier, or of an inventory) as the model's."""
    options = {k: list(v) if isinstance(v, list) else v for k, v in q.options.items()}
    return TierQuiescer(q.kind, q.timeout_seconds, q.lease_seconds, q.on_error, options)


def _excluded(ex: Excluded) -> dict[str, str]:
    return {
        "dataset": ex.dataset,
        "cluster": ex.cluster,
        "kind": ex.kind,
        "because": ex.because,
        "source": ex.source,
    }


def from_doc(doc: PolicyDoc) -> Policy:
    m, spec = doc.metadata, doc.spec
    metadata = Metadata(
        name=m.name,
        source=m.source,
        clusters=tuple(m.clusters),
        generated_at=m.generated_at,
        topology_fingerprint=m.topology_fingerprint,
        generator=m.generator,
        rules=RulesUsed(m.rules.file, tuple(m.rules.presets), m.rules.auto_approve),
    )
    items = tuple(
        Item(
            cluster=i.cluster,
            dataset=i.dataset,
            what=What(
                kind=i.what.kind,
                resource=i.what.resource,
                ha=i.what.ha,
                replication=Replication(i.what.replication),
                location={k: redact_value(k, v) for k, v in i.what.location.items()},
                backing=i.what.backing,
            ),
            schedule=i.schedule,
            where=i.where if i.where is not None else spec.repository,
            retention=Retention(**i.retention.model_dump()),
            copies=i.copies,
            priority=Priority(i.priority),
            read_from=ReadFrom(
                role=ReadRole(i.read_from.role),
                nodes=tuple(i.read_from.nodes),
                max_lag_seconds=i.read_from.max_lag_seconds,
                fallback=Fallback(i.read_from.fallback) if i.read_from.fallback else None,
            ),
            reasons=_reasons(i.reasons),
        )
        for i in spec.items
    )
    groups = tuple(
        ConsistencyGroup(
            name=g.name,
            cluster=g.cluster,
            tiers=tuple(
                GroupTier(
                    t.name,
                    tuple(t.datasets),
                    tuple(t.resources),
                    tuple(t.depends_on),
                    tuple(quiescer_from(q) for q in t.quiesce),
                )
                for t in g.tiers
            ),
            quiesce_order=tuple(g.quiesce_order),
            restore_order=tuple(g.restore_order),
            reasons=_reasons(g.reasons),
        )
        for g in spec.groups
    )
    excluded = tuple(
        Excluded(e.cluster, e.dataset, e.kind, e.because, e.source) for e in spec.excluded
    )
    return Policy(metadata, spec.repository, items, groups, excluded)


def _reasons(reasons: list[ReasonDoc]) -> tuple[Reason, ...]:
    return tuple(Reason(Decision(r.decision), r.because, r.source) for r in reasons)
