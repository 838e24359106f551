"""Retention: which snapshots a keep policy keeps, each with the rule that keeps it.

The semantics are those of ``restic forget``:

* Snapshots are split into **groups** (by default by host, paths and the
  metadata keys ``application`` and ``dataset``); each group is judged on its
  own, so a policy never removes a snapshot because of another group's.
* Within a group, newest first: ``last N`` keeps the N newest. ``hourly``,
  ``daily``, ``weekly`` (ISO weeks), ``monthly`` and ``yearly N`` keep the
  newest snapshot of each of the N newest calendar periods (local time) that
  have a snapshot. ``within D`` keeps every snapshot no older than D before
  the group's newest snapshot (not before now: a repository left alone does
  not empty itself). ``tags`` keeps every snapshot carrying one of them.
  A count of -1 means unlimited.
* A snapshot kept by any rule is kept; a snapshot kept by none is removed.

Everything here is pure: the caller lists the snapshots and removes them.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from haprotect.errors import UsageError
from haprotect.model.snapshot import JSONValue, Snapshot

GROUP_FIELDS = ("host", "paths", "tags", "application", "dataset", "tier")
DEFAULT_GROUP_BY = ("host", "paths", "application", "dataset")
_METADATA_FIELDS = frozenset({"application", "dataset", "tier"})
_DURATION = re.compile(r"(\d+)([ymwdh])")


@dataclass(frozen=True, slots=True)
class Duration:
    """A calendar duration like ``1y2m3w4d5h`` (m is months, as in restic)."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        cleaned = text.strip().lower()
        if not cleaned or _DURATION.sub("", cleaned):
            raise UsageError(
                f"{text!r} is not a duration",
                hint="write it like 2d3h: y years, m months, w weeks, d days, h hours",
            )
        parts = {"y": 0, "m": 0, "w": 0, "d": 0, "h": 0}
        for number, unit in _DURATION.findall(cleaned):
            parts[unit] += int(number)
        return cls(parts["y"], parts["m"], parts["d"] + 7 * parts["w"], parts["h"])

    def before(self, moment: datetime) -> datetime:
        """``moment`` minus this duration, months and years by the calendar."""
        months = moment.year * 12 + moment.month - 1 - self.years * 12 - self.months
        year, month = divmod(months, 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        shifted = moment.replace(year=year, month=month + 1, day=day)
        return shifted - timedelta(days=self.days, hours=self.hours)

    def __str__(self) -> str:
        out = "".join(
            f"{n}{u}"
            for n, u in ((self.years, "y"), (self.months, "m"), (self.days, "d"), (self.hours, "h"))
            if n
        )
        return out or "0h"


@dataclass(frozen=True, slots=True)
class KeepPolicy:
    """A keep policy like ``restic forget``'s: how many snapshots each rule keeps (-1: all)."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: Duration | None = None
    tags: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        counts = (self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly)
        return not any(counts) and self.within is None and not self.tags

    def describe(self) -> str:
        parts = [
            f"{name} {n if n >= 0 else 'all'}"
            for name, n in (
                ("last", self.last),
                ("hourly", self.hourly),
                ("daily", self.daily),
                ("weekly", self.weekly),
                ("monthly", self.monthly),
                ("yearly", self.yearly),
            )
            if n
        ]
        if self.within is not None:
            parts.append(f"within {self.within}")
        parts.extend(f"tag {t}" for t in self.tags)
        return ", ".join(parts) or "nothing"


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one snapshot is kept, and the rules that keep it."""

    snapshot: Snapshot
    keep: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Group:
    """The snapshots of one group, each with its decision, newest first."""

    key: dict[str, JSONValue]
    decisions: tuple[Decision, ...] = field(default=())

    @property
    def kept(self) -> list[Snapshot]:
        return [d.snapshot for d in self.decisions if d.keep]

    @property
    def removed(self) -> list[Snapshot]:
        return [d.snapshot for d in self.decisions if not d.keep]


def parse_group_by(text: str) -> tuple[str, ...]:
    """``host,paths,application`` → its fields; ``""`` or ``none``: one group."""
    if text.strip().lower() in ("", "none"):
        return ()
    fields = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    unknown = [f for f in fields if f not in GROUP_FIELDS]
    if unknown:
        raise UsageError(
            f"cannot group snapshots by {', '.join(unknown)}",
            hint=f"group by any of {', '.join(GROUP_FIELDS)} (or none)",
        )
    return tuple(dict.fromkeys(fields))


def group_key(snapshot: Snapshot, group_by: Sequence[str]) -> dict[str, JSONValue]:
    key: dict[str, JSONValue] = {}
    for name in group_by:
        if name == "host":
            key[name] = snapshot.host
        elif name == "paths":
            key[name] = [*sorted(snapshot.paths)]
        elif name == "tags":
            key[name] = [*sorted(snapshot.tags)]
        elif name in _METADATA_FIELDS:
            key[name] = snapshot.metadata.get(name)
    return key


def select(
    snapshots: Iterable[Snapshot], *, hosts: Sequence[str] = (), tags: Sequence[str] = ()
) -> list[Snapshot]:
    """The snapshots of one of ``hosts`` carrying one of ``tags`` (empty: any)."""
    return [
        s
        for s in snapshots
        if (not hosts or s.host in hosts) and (not tags or set(tags) & set(s.tags))
    ]


def _week(t: datetime) -> str:
    year, week, _ = t.isocalendar()
    return f"week {year:04d}-W{week:02d}"


# rule name, the label of a snapshot's period (equal labels: same period)
_BUCKETS: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("hourly", lambda t: t.strftime("%Y-%m-%d %H:00")),
    ("daily", lambda t: t.strftime("%Y-%m-%d")),
    ("weekly", _week),
    ("monthly", lambda t: t.strftime("%Y-%m")),
    ("yearly", lambda t: t.strftime("%Y")),
)


def require_rules(policy: KeepPolicy) -> None:
    """Refuse a policy without rules: it would remove everything."""
    if policy.empty:
        raise UsageError(
            "no keep rule given: every snapshot would be removed",
            hint="give at least one --keep-* option, or name the snapshots to forget",
        )


def apply_policy(
    snapshots: Iterable[Snapshot],
    policy: KeepPolicy,
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    *,
    tz: tzinfo | None = None,
) -> list[Group]:
    """Judge every snapshot; ``tz`` is the zone of the calendar periods (default: local)."""
    require_rules(policy)
    groups: dict[str, tuple[dict[str, JSONValue], list[Snapshot]]] = {}
    for snapshot in snapshots:
        key = group_key(snapshot, group_by)
        text = json.dumps(key, sort_keys=True)
        groups.setdefault(text, (key, []))[1].append(snapshot)
    return [Group(key, _judge(members, policy, tz)) for _, (key, members) in sorted(groups.items())]


def _judge(members: list[Snapshot], policy: KeepPolicy, tz: tzinfo | None) -> tuple[Decision, ...]:
    ordered = sorted(members, key=lambda s: (s.time, s.id), reverse=True)
    reasons: list[list[str]] = [[] for _ in ordered]
    local = [s.time.astimezone(tz) for s in ordered]
    if policy.tags:
        for i, s in enumerate(ordered):
            found = sorted(set(policy.tags) & set(s.tags))
            if found:
                reasons[i].append(f"keep-tag: has tag {', '.join(found)}")
    if policy.last:
        n = len(ordered) if policy.last < 0 else policy.last
        for i in range(min(n, len(ordered))):
            reasons[i].append(f"keep-last {_limit(policy.last)}: the {_nth(i + 1)} newest")
    for name, bucket in _BUCKETS:
        limit = getattr(policy, name)
        if not limit:
            continue
        count, previous = 0, None
        for i, moment in enumerate(local):
            current = bucket(moment)
            if current == previous:
                continue
            previous = current
            if limit > 0 and count >= limit:
                break
            count += 1
            reasons[i].append(
                f"keep-{name} {_limit(limit)}: newest of {current} ({_nth(count)} period)"
            )
    if policy.within is not None and ordered:
        cutoff = policy.within.before(ordered[0].time)
        for i, s in enumerate(ordered):
            if s.time > cutoff:
                reasons[i].append(
                    f"keep-within {policy.within}: less than {policy.within} older than the "
                    f"group's newest ({local[0]:%Y-%m-%d %H:%M})"
                )
    return tuple(
        Decision(s, bool(r), tuple(r) if r else ("no keep rule applies",))
        for s, r in zip(ordered, reasons, strict=True)
    )


def _nth(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _limit(n: int) -> str:
    return "all" if n < 0 else str(n)
