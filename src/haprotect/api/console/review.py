"""A policy under review: its versions, the decisions of the one to review, what it changes.

The version shown is the newest pending one, else the approved one, else
the newest. Its decisions are :func:`haprotect.policy.explain`'s (each
with its value, its reason and the cluster object it came from); the
changes are the API's diff against the approved version.
"""

from __future__ import annotations

from dataclasses import dataclass

from haprotect.api.policy_review import changes_between, parsed
from haprotect.catalog import Catalog
from haprotect.catalog.records import PolicyVersion
from haprotect.policy import Explanation, explain
from haprotect.policy.diff import Change, Value


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One change as the page shows it: old and new values as text."""

    kind: str
    section: str
    key: str
    field: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Review:
    name: str
    versions: tuple[PolicyVersion, ...]
    approved: PolicyVersion | None
    pending: PolicyVersion | None
    shown: PolicyVersion
    explanation: Explanation
    #: what the pending version changes from the approved one; empty with nothing pending
    changes: tuple[ChangeRow, ...]


def shown_value(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def change_row(change: Change) -> ChangeRow:
    return ChangeRow(
        change.kind.value,
        change.section,
        change.key,
        change.field,
        shown_value(change.old),
        shown_value(change.new),
    )


def review(catalog: Catalog, name: str) -> Review:
    """The review of policy ``name`` (CatalogNotFound when there is none)."""
    versions = tuple(catalog.versions(name))
    approved = catalog.approved(name)
    pending = catalog.pending(name)
    shown = pending or approved or catalog.version(name)
    changes = () if pending is None else changes_between(approved, pending)
    return Review(
        name=name,
        versions=versions,
        approved=approved,
        pending=pending,
        shown=shown,
        explanation=explain(parsed(shown)),
        changes=tuple(change_row(c) for c in changes),
    )
