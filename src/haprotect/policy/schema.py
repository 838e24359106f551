"""The ``haprotect/v1`` policy document as pydantic models, and its checks.

Field validation (types, bounds, cron, repository URLs, unknown keys) is
pydantic's; the checks that span fields (duplicate items, dependency cycles
between tiers, group orders against ``depends_on``, group members that are
not items) are :func:`problems`, which returns each with
the path it concerns so that the caller can name the line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from haprotect.policy.fields import (
    Copies,
    Cron,
    FallbackName,
    HoldSeconds,
    LagSeconds,
    Name,
    PriorityName,
    RetentionDoc,
    Strict,
    Where,
)
from haprotect.policy.tier_cycles import dependency_cycles
from haprotect.yamlsource import Loc

DecisionName = Literal[
    "include",
    "exclude",
    "priority",
    "schedule",
    "where",
    "retention",
    "copies",
    "read_from",
    "group",
    "quiesce_order",
    "quiesce",
    "restore_order",
]

#: A quiescer option: a string, number, boolean, argument list or mapping of strings.
OptionValue = str | bool | int | float | list[str] | dict[str, str]


class ReasonDoc(Strict):
    decision: DecisionName
    because: Name
    source: Name


class ReadFromDoc(Strict):
    """Which node an item is read from; lag limit and fallback go with ``standby`` only."""

    role: Literal["standby", "primary", "active", "local"]
    nodes: list[Name] = Field(default_factory=list)
    max_lag_seconds: LagSeconds | None = None
    fallback: FallbackName | None = None

    @model_validator(mode="after")
    def _lag_only_for_standby(self) -> ReadFromDoc:
        standby_only = self.max_lag_seconds is not None or self.fallback is not None
        if self.role == "standby" and (self.max_lag_seconds is None or self.fallback is None):
            raise ValueError("a standby read needs max_lag_seconds and fallback")
        if self.role != "standby" and standby_only:
            raise ValueError(
                f"max_lag_seconds and fallback apply to standby reads, not {self.role}"
            )
        return self


class WhatDoc(Strict):
    kind: Name
    resource: Name
    ha: bool
    replication: Literal["shared", "replicated", "local"]
    location: dict[str, str] = Field(default_factory=dict)
    backing: Name | None = None


class ItemDoc(Strict):
    dataset: Name
    cluster: Name
    what: WhatDoc
    priority: PriorityName
    schedule: Cron
    where: Where | None = None
    retention: RetentionDoc
    copies: Copies
    read_from: ReadFromDoc
    reasons: list[ReasonDoc] = Field(default_factory=list)


class QuiescerDoc(Strict):
    """One quiescer of a tier; its lease must be at least its timeout."""

    kind: Name
    timeout_seconds: HoldSeconds = 30.0
    lease_seconds: HoldSeconds = 120.0
    on_error: Literal["fail", "continue"] = "fail"
    options: dict[Name, OptionValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _lease_outlasts_timeout(self) -> QuiescerDoc:
        if self.lease_seconds < self.timeout_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must be at least timeout_seconds "
                f"({self.timeout_seconds:g})"
            )
        return self


class TierDoc(Strict):
    name: Name
    datasets: list[Name] = Field(default_factory=list)
    resources: list[Name] = Field(default_factory=list)
    depends_on: list[Name] = Field(default_factory=list)
    quiesce: list[QuiescerDoc] = Field(default_factory=list)


class GroupDoc(Strict):
    name: Name
    cluster: Name
    tiers: Annotated[list[TierDoc], Field(min_length=1)]
    quiesce_order: list[Name]
    restore_order: list[Name]
    reasons: list[ReasonDoc] = Field(default_factory=list)


class ExcludedDoc(Strict):
    dataset: Name
    cluster: Name
    kind: Name
    because: Name
    source: Name


class RulesUsedDoc(Strict):
    file: str | None = None
    presets: list[Name] = Field(default_factory=list)
    auto_approve: bool = False


class MetadataDoc(Strict):
    name: Name
    source: Name
    clusters: Annotated[list[Name], Field(min_length=1)]
    generated_at: Annotated[datetime, Field(strict=False)]
    topology_fingerprint: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
    generator: Name = "haprotect"
    rules: RulesUsedDoc = RulesUsedDoc()


class SpecDoc(Strict):
    repository: Where
    items: list[ItemDoc] = Field(default_factory=list)
    groups: list[GroupDoc] = Field(default_factory=list)
    excluded: list[ExcludedDoc] = Field(default_factory=list)


class PolicyDoc(Strict):
    """The ``haprotect/v1`` policy document; :func:`problems` adds the checks that span fields."""

    apiVersion: Literal["haprotect/v1"]
    kind: Literal["Policy"]
    metadata: MetadataDoc
    spec: SpecDoc


def problems(doc: PolicyDoc) -> list[tuple[Loc, str]]:
    """Cross-field problems, each with the path of the field it concerns."""
    found: list[tuple[Loc, str]] = []
    clusters = set(doc.metadata.clusters)
    items: dict[tuple[str, str], int] = {}
    for i, item in enumerate(doc.spec.items):
        key = (item.cluster, item.dataset)
        if key in items:
            found.append(
                (
                    ("spec", "items", i, "dataset"),
                    f"dataset {item.dataset!r} of cluster {item.cluster!r} is already "
                    f"spec.items[{items[key]}]",
                )
            )
        items.setdefault(key, i)
        if item.what.backing == item.dataset:
            found.append(
                (
                    ("spec", "items", i, "what", "backing"),
                    f"dataset {item.dataset!r} cannot lie on itself",
                )
            )
        if item.cluster not in clusters:
            found.append((("spec", "items", i, "cluster"), _unknown_cluster(item.cluster, doc)))
    for i, ex in enumerate(doc.spec.excluded):
        if (ex.cluster, ex.dataset) in items:
            found.append(
                (
                    ("spec", "excluded", i, "dataset"),
                    f"dataset {ex.dataset!r} is both excluded and spec.items"
                    f"[{items[(ex.cluster, ex.dataset)]}]",
                )
            )
    members: dict[tuple[str, str], str] = {}
    names: set[tuple[str, str]] = set()
    for g, group in enumerate(doc.spec.groups):
        loc: Loc = ("spec", "groups", g)
        if (group.cluster, group.name) in names:
            found.append(((*loc, "name"), f"group {group.name!r} is defined twice"))
        names.add((group.cluster, group.name))
        if group.cluster not in clusters:
            found.append(((*loc, "cluster"), _unknown_cluster(group.cluster, doc)))
        found.extend(_group_problems(group, loc))
        for t, tier in enumerate(group.tiers):
            for d, dataset in enumerate(tier.datasets):
                where: Loc = (*loc, "tiers", t, "datasets", d)
                if (group.cluster, dataset) not in items:
                    found.append((where, f"dataset {dataset!r} is not an item of the policy"))
                elif (group.cluster, dataset) in members:
                    other = members[(group.cluster, dataset)]
                    found.append((where, f"dataset {dataset!r} is already in {other}"))
                members[(group.cluster, dataset)] = f"group {group.name!r} tier {tier.name!r}"
    return found


def _unknown_cluster(name: str, doc: PolicyDoc) -> str:
    return f"cluster {name!r} is not in metadata.clusters ({', '.join(doc.metadata.clusters)})"


def _group_problems(group: GroupDoc, loc: Loc) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    tiers = [t.name for t in group.tiers]
    if len(set(tiers)) != len(tiers):
        found.append(((*loc, "tiers"), "tier names repeat"))
    for t, tier in enumerate(group.tiers):
        for d, dep in enumerate(tier.depends_on):
            if dep not in tiers:
                found.append(
                    ((*loc, "tiers", t, "depends_on", d), f"no tier {dep!r} in this group")
                )
    in_cycles: set[str] = set()
    for t, d, cycle in dependency_cycles(group.tiers):
        in_cycles.update(cycle)
        what = " (a tier that depends on itself)" if len(cycle) == 1 else ""
        found.append(
            (
                (*loc, "tiers", t, "depends_on", d),
                "dependency cycle: " + " -> ".join([*cycle, cycle[0]]) + what,
            )
        )
    for field, top_down in (("quiesce_order", True), ("restore_order", False)):
        order: list[str] = getattr(group, field)
        if sorted(order) != sorted(tiers):
            found.append(((*loc, field), f"must list each tier once: {', '.join(tiers)}"))
            continue
        position = {name: i for i, name in enumerate(order)}
        for tier in group.tiers:
            for dep in tier.depends_on:
                if dep not in position or {tier.name, dep} <= in_cycles:
                    continue
                if top_down and position[tier.name] > position[dep]:
                    found.append(
                        (
                            (*loc, field),
                            f"{tier.name!r} depends on {dep!r}, so it is quiesced first",
                        )
                    )
                if not top_down and position[tier.name] < position[dep]:
                    found.append(
                        (
                            (*loc, field),
                            f"{tier.name!r} depends on {dep!r}, so it is restored after it",
                        )
                    )
    return found
