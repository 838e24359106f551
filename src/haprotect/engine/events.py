"""The typed events a run emits, and the Reporter that receives them.

The engine never prints: it emits events, and whoever runs it renders them
(the CLI as rich progress bars, ``--json`` as JSON lines, a daemon into its
job history). The order of a backup run:

``RunStarted``, then per set ``SetStarted``, per tier ``TierStarted``, per
item ``ItemStarted``, any number of ``ItemProgress``, ``Note`` and
``Issue``, ``ItemFinished``; ``TierFinished``; ``SetFinished``; at the end
``RunFinished`` with the :class:`~haprotect.model.result.Result`. A restore
emits the same events, tiers in restore order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from haprotect.model.result import ItemStatus, Result, Severity
from haprotect.redact import display_url, redact_entry


@dataclass(frozen=True, slots=True)
class ItemRef:
    """Which item an event is about."""

    set_id: str
    set_name: str
    cluster: str
    tier: str
    dataset: str
    kind: str

    @property
    def scope(self) -> str:
        return f"{self.cluster}/{self.dataset}"


@dataclass(frozen=True, slots=True)
class RunStarted:
    operation: str  #: ``backup`` or ``restore``
    sets: int
    items: int
    time: datetime


@dataclass(frozen=True, slots=True)
class SetStarted:
    set_id: str
    name: str
    application: str | None
    repository: str
    order: tuple[str, ...]  #: the tiers, in the order this run goes through them


@dataclass(frozen=True, slots=True)
class TierStarted:
    set_id: str
    tier: str
    items: int


@dataclass(frozen=True, slots=True)
class ItemStarted:
    item: ItemRef
    action: str  #: what is about to happen, in words
    node: str | None = None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class ItemProgress:
    """How far an item's copy has got; the totals are None while unknown."""

    item: ItemRef
    files_done: int
    bytes_done: int
    files_total: int | None = None
    bytes_total: int | None = None
    current: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Something worth knowing that is not a problem (a step, a wait)."""

    scope: str
    message: str


@dataclass(frozen=True, slots=True)
class Issue:
    """A warning or error of the run, also recorded in its result; ``scope`` is an item or a set."""

    scope: str
    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class ItemFinished:
    """How an item ended, with its snapshot (a backup) and how long it took."""

    item: ItemRef
    status: ItemStatus
    message: str
    snapshot_id: str | None = None
    node: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class TierFinished:
    set_id: str
    tier: str
    ok: bool  #: every item of the tier succeeded (restored and checked healthy)
    message: str = ""


@dataclass(frozen=True, slots=True)
class SetFinished:
    set_id: str
    name: str
    ok: bool


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The last event of a run, with the outcome the run returns."""

    result: Result


Event = (
    RunStarted
    | SetStarted
    | TierStarted
    | ItemStarted
    | ItemProgress
    | Note
    | Issue
    | ItemFinished
    | TierFinished
    | SetFinished
    | RunFinished
)


class Reporter(Protocol):
    """Where a run's events go (a progress bar, JSON lines, a list): the engine never prints."""

    def emit(self, event: Event) -> None: ...


class NullReporter:
    """Drops every event: for callers that only want the run's result."""

    def emit(self, event: Event) -> None:
        return None


class ListReporter:
    """Keeps every event, for tests and for callers that look afterwards."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def event_name(event: Event) -> str:
    """``ItemStarted`` -> ``item_started``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


def event_to_json(event: Event) -> dict[str, Any]:
    """One JSON object per event: ``{"event": "item_started", ...its fields}``."""
    body = to_plain(event)
    assert isinstance(body, dict)
    if isinstance(event, ItemStarted | ItemProgress | ItemFinished):
        body["scope"] = event.item.scope
    return {"event": event_name(event), **body}


def to_plain(value: Any) -> Any:
    """``value`` as JSON data, with the credentials in its mappings' values redacted.

    A mapping (a quiescer's options, a location, details) is shown as
    :func:`haprotect.redact.redact_entry` shows it: the model keeps the real
    values its users need, every JSON output of a plan, an event or a result
    comes through here. A dataclass's fields are not keys: ``path_key`` is
    not a secret; but a URL in one (a set's repository) is shown as
    :func:`haprotect.redact.display_url` shows it.
    """
    return _plain(value, None)


def _field(value: Any) -> Any:
    if isinstance(value, str) and "://" in value:
        return display_url(value)
    return _plain(value, None)


def _plain(value: Any, key: str | None) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _field(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, key) for v in value]
    if isinstance(value, Enum):
        value = value.value
    elif isinstance(value, datetime):
        value = value.isoformat()
    return value if key is None else redact_entry(key, value)


__all__ = [
    "Event",
    "Issue",
    "ItemFinished",
    "ItemProgress",
    "ItemRef",
    "ItemStarted",
    "ListReporter",
    "Note",
    "NullReporter",
    "Reporter",
    "RunFinished",
    "RunStarted",
    "SetFinished",
    "SetStarted",
    "TierFinished",
    "TierStarted",
    "event_name",
    "event_to_json",
    "to_plain",
]
