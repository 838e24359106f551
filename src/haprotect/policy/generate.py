"""From a topology and rules to a policy: the pure heart of ``haprotect plan``."""

from __future__ import annotations

from datetime import UTC, datetime

from haprotect.errors import InputError
from haprotect.model.policy import (
    ConsistencyGroup,
    Excluded,
    Item,
    Metadata,
    Policy,
    RulesUsed,
)
from haprotect.model.topology import Topology
from haprotect.policy.decide import decide
from haprotect.policy.fingerprint import topology_fingerprint
from haprotect.policy.groups import build_groups, memberships
from haprotect.policy.layers import apply_layers
from haprotect.policy.rules import Rules
from haprotect.redact import redact_text


def generate(
    topology: Topology,
    rules: Rules,
    *,
    source: str,
    now: datetime,
    generator: str = "haprotect",
) -> Policy:
    """The policy ``rules`` give for ``topology``, discovered from ``source``.

    ``now`` is the generation time (second precision, UTC), passed in so that
    the same inputs always give the same policy.
    """
    if not topology.clusters:
        raise InputError(f"{redact_text(source)}: no cluster found, nothing to protect")
    items: list[Item] = []
    excluded: list[Excluded] = []
    groups: list[ConsistencyGroup] = []
    for cluster in topology.clusters:
        owner = memberships(cluster)
        own = {ds.id: decide(cluster, ds, rules, owner.get(ds.id)) for ds in cluster.datasets}
        protected: set[str] = set()
        for ds_id, outcome in apply_layers(cluster, rules, own).items():
            if isinstance(outcome, Item):
                items.append(outcome)
                protected.add(ds_id)
            else:
                excluded.append(outcome)
        groups.extend(build_groups(cluster, protected))
    names = tuple(c.name for c in topology.clusters)
    metadata = Metadata(
        name="+".join(names),
        source=redact_text(source),
        clusters=names,
        generated_at=now.astimezone(UTC).replace(microsecond=0),
        topology_fingerprint=topology_fingerprint(topology),
        generator=generator,
        rules=RulesUsed(rules.origin, rules.presets, rules.auto_approve),
    )
    return Policy(metadata, rules.where, tuple(items), tuple(groups), tuple(excluded))


def unused_dataset_rules(topology: Topology, rules: Rules) -> list[str]:
    """Keys under ``datasets:`` in the rules that match no data set (likely typos)."""
    known: set[str] = set()
    for cluster in topology.clusters:
        for ds in cluster.datasets:
            known.update((ds.id, f"{cluster.name}/{ds.id}"))
    return [key for key in rules.datasets if key not in known]
