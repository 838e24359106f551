"""A run's detail from its recorded events: sets, their tiers in run order, items, issues.

The events are the engine's (:mod:`haprotect.engine.events`) as the run's
child printed them in JSON; a field missing or of another type is shown
as unknown rather than failing the page, since a run that crashed may
have recorded half of what it meant to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from haprotect.catalog.records import RunEvent


@dataclass(slots=True)
class ItemView:
    scope: str
    dataset: str
    kind: str
    action: str = ""
    node: str = ""
    status: str = "running"
    message: str = ""
    seconds: float | None = None
    snapshot: str = ""
    files_done: int | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None


@dataclass(slots=True)
class TierView:
    name: str
    items: list[ItemView] = field(default_factory=list)
    #: None while the tier has not finished
    ok: bool | None = None
    message: str = ""


@dataclass(slots=True)
class SetView:
    set_id: str
    name: str
    application: str = ""
    repository: str = ""
    tiers: list[TierView] = field(default_factory=list)
    ok: bool | None = None

    def tier(self, name: str) -> TierView:
        found = next((t for t in self.tiers if t.name == name), None)
        if found is None:
            found = TierView(name)
            self.tiers.append(found)
        return found


@dataclass(frozen=True, slots=True)
class IssueView:
    severity: str
    scope: str
    message: str


@dataclass(slots=True)
class RunDetail:
    operation: str = ""
    sets: list[SetView] = field(default_factory=list)
    issues: list[IssueView] = field(default_factory=list)
    notes: list[IssueView] = field(default_factory=list)

    @property
    def warnings(self) -> list[IssueView]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def errors(self) -> list[IssueView]:
        return [i for i in self.issues if i.severity != "warning"]


def _text(payload: Mapping[str, object], key: str) -> str:
    value = payload.get(key)
    return "" if value is None else str(value)


def _number(payload: Mapping[str, object], key: str) -> int | None:
    value = payload.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(payload: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = payload.get(key)
    return value if isinstance(value, Mapping) else {}


class _Builder:
    def __init__(self) -> None:
        self.detail = RunDetail()
        self.sets: dict[str, SetView] = {}
        self.items: dict[tuple[str, str], ItemView] = {}

    def set(self, set_id: str, name: str = "") -> SetView:
        found = self.sets.get(set_id)
        if found is None:
            found = self.sets[set_id] = SetView(set_id, name or set_id)
            self.detail.sets.append(found)
        return found

    def item(self, payload: Mapping[str, object]) -> ItemView:
        ref = _mapping(payload, "item")
        set_id = _text(ref, "set_id")
        scope = _text(payload, "scope") or f"{_text(ref, 'cluster')}/{_text(ref, 'dataset')}"
        found = self.items.get((set_id, scope))
        if found is None:
            found = ItemView(scope, _text(ref, "dataset"), _text(ref, "kind"))
            self.items[(set_id, scope)] = found
            self.set(set_id, _text(ref, "set_name")).tier(_text(ref, "tier")).items.append(found)
        return found

    def add(self, kind: str, p: Mapping[str, object]) -> None:
        if kind == "run_started":
            self.detail.operation = _text(p, "operation")
        elif kind == "set_started":
            view = self.set(_text(p, "set_id"), _text(p, "name"))
            view.application, view.repository = _text(p, "application"), _text(p, "repository")
            order = p.get("order")
            for tier in order if isinstance(order, list) else ():
                view.tier(str(tier))
        elif kind == "tier_finished":
            tier = self.set(_text(p, "set_id")).tier(_text(p, "tier"))
            tier.ok, tier.message = bool(p.get("ok")), _text(p, "message")
        elif kind == "set_finished":
            self.set(_text(p, "set_id"), _text(p, "name")).ok = bool(p.get("ok"))
        elif kind == "item_started":
            item = self.item(p)
            item.action, item.node = _text(p, "action"), _text(p, "node")
        elif kind == "item_progress":
            item = self.item(p)
            item.files_done, item.bytes_done = _number(p, "files_done"), _number(p, "bytes_done")
            item.bytes_total = _number(p, "bytes_total")
        elif kind == "item_finished":
            item = self.item(p)
            item.status, item.message = _text(p, "status"), _text(p, "message")
            item.node = _text(p, "node") or item.node
            item.snapshot = _text(p, "snapshot_id")
            seconds = p.get("seconds")
            item.seconds = float(seconds) if isinstance(seconds, int | float) else None
        elif kind == "issue":
            self.detail.issues.append(
                IssueView(_text(p, "severity"), _text(p, "scope"), _text(p, "message"))
            )
        elif kind == "note":
            self.detail.notes.append(IssueView("note", _text(p, "scope"), _text(p, "message")))


def run_detail(events: Iterable[RunEvent]) -> RunDetail:
    builder = _Builder()
    for event in events:
        builder.add(event.kind, event.payload)
    return builder.detail
