"""Why each item of a policy is protected as it is, decision by decision.

Every decision of an item (and of a consistency group) gets a line with its
value and each reason recorded for it. A decision with no reason (a value an
administrator edited in by hand without one) says so rather than vanishing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from haprotect.model.policy import (
    ConsistencyGroup,
    Decision,
    Item,
    Policy,
    ReadFrom,
    ReadRole,
    Reason,
    Retention,
)
from haprotect.redact import display_url

NO_REASON = "no reason recorded (set by hand?)"


@dataclass(frozen=True, slots=True)
class Line:
    """One reason for one decision (or that it has none), with the decision's value."""

    decision: str
    value: str
    because: str
    source: str


@dataclass(frozen=True, slots=True)
class Explained:
    """One item or group: ``key`` is ``cluster/name``, ``title`` describes it."""

    key: str
    title: str
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """A whole policy explained: every item and group decision by decision, every exclusion."""

    title: str
    items: tuple[Explained, ...]
    groups: tuple[Explained, ...]
    excluded: tuple[Line, ...]


def explain(policy: Policy, only: str | None = None) -> Explanation:
    """Explain every item, group and exclusion; or, with ``only`` (a data set id
    or ``cluster/id``), just that data set's item or exclusion."""
    m = policy.metadata
    title = (
        f"policy {m.name}: {_count(len(policy.items), 'item')}, "
        f"{_count(len(policy.groups), 'group')}, {len(policy.excluded)} excluded; "
        f"from {m.source} at {m.generated_at.isoformat()}"
    )

    def wanted(cluster: str, dataset: str) -> bool:
        return only is None or only in (dataset, f"{cluster}/{dataset}")

    return Explanation(
        title=title,
        items=tuple(_item(policy, i) for i in policy.items if wanted(i.cluster, i.dataset)),
        groups=tuple(_group(g) for g in policy.groups) if only is None else (),
        excluded=tuple(
            Line(Decision.EXCLUDE.value, f"{e.cluster}/{e.dataset}", e.because, e.source)
            for e in policy.excluded
            if wanted(e.cluster, e.dataset)
        ),
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _item(policy: Policy, item: Item) -> Explained:
    w = item.what
    on = f"; lies on {w.backing}" if w.backing else ""
    title = (
        f"{w.kind} {item.dataset} (resource {w.resource}; "
        f"{'HA' if w.ha else 'not HA'}, {w.replication.value}{on})"
    )
    values: list[tuple[Decision, str]] = [
        (Decision.INCLUDE, "protected"),
        (Decision.PRIORITY, item.priority.value),
        (Decision.SCHEDULE, item.schedule),
        (Decision.WHERE, display_url(item.where)),
        (Decision.RETENTION, retention_text(item.retention)),
        (Decision.COPIES, str(item.copies)),
        (Decision.READ_FROM, read_from_text(item.read_from)),
    ]
    membership = policy.group_of(item)
    if membership is not None:
        group, tier = membership
        values.append((Decision.GROUP, f"{group.name}, tier {tier.name}"))
    return Explained(f"{item.cluster}/{item.dataset}", title, _lines(values, item.reasons))


def _group(group: ConsistencyGroup) -> Explained:
    tiers = ", ".join(
        f"{t.name} [{', '.join(t.datasets)}]" if t.datasets else t.name for t in group.tiers
    )
    values = [
        (Decision.GROUP, tiers),
        (Decision.QUIESCE_ORDER, " -> ".join(group.quiesce_order)),
        (Decision.RESTORE_ORDER, " -> ".join(group.restore_order)),
    ]
    title = f"consistency group {group.name} ({len(group.tiers)} tiers, bottom-up)"
    return Explained(f"{group.cluster}/{group.name}", title, _lines(values, group.reasons))


def _lines(values: list[tuple[Decision, str]], reasons: tuple[Reason, ...]) -> tuple[Line, ...]:
    lines: list[Line] = []
    for decision, value in values:
        mine = [r for r in reasons if r.decision is decision]
        if not mine:
            lines.append(Line(decision.value, value, NO_REASON, ""))
        lines.extend(Line(decision.value, value, r.because, r.source) for r in mine)
    return tuple(lines)


def retention_text(retention: Retention) -> str:
    """``24 hourly, 14 daily, 8 weekly, 12 monthly, 1 yearly`` (zeros left out)."""
    parts = [
        f"{keep} {name.removeprefix('keep_')}" for name, keep in retention.as_dict().items() if keep
    ]
    return ", ".join(parts)


def read_from_text(read: ReadFrom) -> str:
    nodes = f" {', '.join(read.nodes)}" if read.nodes else ""
    text = f"{read.role.value}{nodes}"
    if read.role is ReadRole.STANDBY:
        fallback = read.fallback.value if read.fallback else "?"
        text += f" (max lag {read.max_lag_seconds}s, else {fallback})"
    return text


def explanation_to_json(explanation: Explanation) -> dict[str, Any]:
    def lines(ls: tuple[Line, ...]) -> list[dict[str, str]]:
        return [
            {"decision": x.decision, "value": x.value, "because": x.because, "source": x.source}
            for x in ls
        ]

    return {
        "title": explanation.title,
        "items": [
            {"key": e.key, "title": e.title, "lines": lines(e.lines)} for e in explanation.items
        ],
        "groups": [
            {"key": e.key, "title": e.title, "lines": lines(e.lines)} for e in explanation.groups
        ],
        "excluded": lines(explanation.excluded),
    }
