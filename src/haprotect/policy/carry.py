"""A regenerated policy that keeps the administrator's edits.

When the cluster changes, the policy is generated again from it; the new
version must cover the new data without undoing what an administrator chose.
This is a three-way merge, field by field: ``base`` is the policy as it was
generated, ``edited`` what the administrator approved (base plus their
edits), ``regenerated`` the policy generated from the cluster as it is now.

- A choice the administrator changed (an item's schedule, where, retention,
  copies, priority or read_from; a tier's quiescers; the repository) is
  kept, and its reason says so. Every other choice is the new generation's,
  so what the cluster says about the data (kind, location, replication)
  is always current.
- An item the administrator removed stays out, listed as excluded with that
  reason, so that drift does not raise it again.
- An item the administrator added by hand is kept.
- A data set new in the cluster comes in as generated: that is the point.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from haprotect.model.policy import (
    ConsistencyGroup,
    Decision,
    Excluded,
    GroupTier,
    Item,
    Policy,
    Reason,
)

#: The fields of an item an administrator edits, each with the decision that explains it.
EDITABLE = {
    "schedule": Decision.SCHEDULE,
    "where": Decision.WHERE,
    "retention": Decision.RETENTION,
    "copies": Decision.COPIES,
    "priority": Decision.PRIORITY,
    "read_from": Decision.READ_FROM,
}

#: The source a kept edit's reason names.
EDIT_SOURCE = "administrator"


@dataclass(frozen=True, slots=True)
class CarriedEdit:
    """One choice of the administrator's that the regenerated policy keeps."""

    key: str  #: ``cluster/dataset`` of an item, ``cluster/group/tier`` of a tier, or ``spec``
    field: str
    kept: str  #: the administrator's value, as text
    generated: str  #: what generation would have chosen

    def describe(self) -> str:
        return f"{self.key}: kept {self.field} {self.kept} (generated: {self.generated})"


@dataclass(frozen=True, slots=True)
class Carried:
    policy: Policy
    edits: tuple[CarriedEdit, ...]


def carry_edits(base: Policy | None, edited: Policy, regenerated: Policy) -> Carried:
    """``regenerated`` with every edit that turns ``base`` into ``edited``.

    Without a ``base`` (the generated ancestor is not known), every choice
    of ``edited`` that differs from the new generation is taken for an edit
    and kept: nothing the administrator chose is lost, at the cost of
    keeping choices generation would now make differently.
    """
    if base is None:
        base = assumed_base(edited, regenerated)
    edits: list[CarriedEdit] = []
    base_items = {i.key: i for i in base.items}
    edited_items = {i.key: i for i in edited.items}
    items: list[Item] = []
    removed: list[Excluded] = []
    for new in regenerated.items:
        old, mine = base_items.get(new.key), edited_items.get(new.key)
        if old is not None and mine is None:
            removed.append(_removed(new))
        elif old is not None and mine is not None:
            items.append(_item(old, mine, new, edits))
        else:
            items.append(mine if mine is not None else new)
    regenerated_keys = {i.key for i in regenerated.items}
    items += [
        i for k, i in edited_items.items() if k not in base_items and k not in regenerated_keys
    ]
    repository = regenerated.repository
    if edited.repository != base.repository:
        repository = edited.repository
        edits.append(CarriedEdit("spec", "repository", edited.repository, regenerated.repository))
    taken = {(i.cluster, i.dataset) for i in items}
    excluded = [e for e in regenerated.excluded if (e.cluster, e.dataset) not in taken]
    excluded += [e for e in removed if (e.cluster, e.dataset) not in {x.key for x in excluded}]
    groups = _groups(base, edited, regenerated, edits)
    metadata = replace(regenerated.metadata, name=edited.metadata.name)
    policy = replace(
        regenerated,
        metadata=metadata,
        repository=repository,
        items=tuple(items),
        groups=groups,
        excluded=tuple(excluded),
    )
    return Carried(policy, tuple(edits))


def assumed_base(edited: Policy, regenerated: Policy) -> Policy:
    """A base under which every difference between ``edited`` and ``regenerated`` is an edit."""
    kept = {i.key for i in edited.items}
    return replace(
        edited,
        repository=regenerated.repository,
        items=tuple(i for i in regenerated.items if i.key in kept),
        groups=regenerated.groups,
    )


def _item(base: Item, edited: Item, new: Item, edits: list[CarriedEdit]) -> Item:
    changes: dict[str, object] = {}
    kept: list[Decision] = []
    for name, decision in EDITABLE.items():
        mine = getattr(edited, name)
        if mine != getattr(base, name):
            changes[name] = mine
            kept.append(decision)
            edits.append(
                CarriedEdit(
                    f"{new.cluster}/{new.dataset}", name, _text(mine), _text(getattr(new, name))
                )
            )
    if not changes:
        return new
    reasons = tuple(r for r in new.reasons if r.decision not in kept) + tuple(
        Reason(d, "set by the administrator; kept when the policy was regenerated", EDIT_SOURCE)
        for d in kept
    )
    return replace(new, **changes, reasons=reasons)  # type: ignore[arg-type]


def _groups(
    base: Policy, edited: Policy, regenerated: Policy, edits: list[CarriedEdit]
) -> tuple[ConsistencyGroup, ...]:
    base_groups = {(g.cluster, g.name): g for g in base.groups}
    edited_groups = {(g.cluster, g.name): g for g in edited.groups}
    groups = []
    for new in regenerated.groups:
        key = (new.cluster, new.name)
        old, mine = base_groups.get(key), edited_groups.get(key)
        if old is None or mine is None:
            groups.append(new)
            continue
        tiers = tuple(_tier(new, old, mine, tier, edits) for tier in new.tiers)
        groups.append(replace(new, tiers=tiers))
    return tuple(groups)


def _tier(
    group: ConsistencyGroup,
    base: ConsistencyGroup,
    edited: ConsistencyGroup,
    tier: GroupTier,
    edits: list[CarriedEdit],
) -> GroupTier:
    old = next((t for t in base.tiers if t.name == tier.name), None)
    mine = next((t for t in edited.tiers if t.name == tier.name), None)
    if old is None or mine is None or mine.quiesce == old.quiesce:
        return tier
    key = f"{group.cluster}/{group.name}/{tier.name}"
    kinds = ", ".join(q.kind for q in mine.quiesce) or "none"
    generated = ", ".join(q.kind for q in tier.quiesce) or "none"
    edits.append(CarriedEdit(key, "quiesce", kinds, generated))
    return replace(tier, quiesce=mine.quiesce)


def _removed(item: Item) -> Excluded:
    return Excluded(
        cluster=item.cluster,
        dataset=item.dataset,
        kind=item.what.kind,
        because="removed from the policy by the administrator; kept out when regenerated",
        source=EDIT_SOURCE,
    )


def _text(value: object) -> str:
    if hasattr(value, "as_dict"):
        return ", ".join(f"{k} {v}" for k, v in value.as_dict().items() if v)
    if hasattr(value, "role"):
        return str(value.role)
    return str(value)
