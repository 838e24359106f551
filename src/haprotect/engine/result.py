"""Collecting a run's outcome, and deciding how it ended.

- **Completed**: at least one item, every item ``ok``, and no error outside
  the items (a set's topology copy that could not be stored, say).
- **Failed**: no item was backed up (or restored), not even partly.
- **PartiallyFailed**: anything in between: some items failed or were
  skipped, or some files of an item could not be read or written.

Warnings never change the status.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from haprotect.engine.events import Issue, ItemFinished, ItemRef, Reporter, to_plain
from haprotect.errors import HaprotectError
from haprotect.model.result import IssueRecord, ItemResult, ItemStatus, Result, Severity, Status
from haprotect.model.snapshot import JSONValue


class ResultBuilder:
    """Collects the items and issues of one backup or restore run, reporting each as it comes.

    :meth:`finish` decides the run's status and gives its result.
    """

    def __init__(self, operation: str, reporter: Reporter) -> None:
        self.operation = operation
        self.reporter = reporter
        self.started = datetime.now(UTC)
        self.items: list[ItemResult] = []
        self.issues: list[IssueRecord] = []
        self.sets: list[str] = []

    def issue(self, scope: str, severity: Severity, message: str) -> None:
        self.issues.append(IssueRecord(scope, severity, message))
        self.reporter.emit(Issue(scope, severity, message))

    def warn(self, scope: str, message: str) -> None:
        self.issue(scope, Severity.WARNING, message)

    def error(self, scope: str, message: str) -> None:
        self.issue(scope, Severity.ERROR, message)

    def add(self, item: ItemResult) -> None:
        self.items.append(item)

    def finish_item(
        self,
        ref: ItemRef,
        status: ItemStatus,
        message: str,
        *,
        snapshot_id: str | None,
        node: str | None,
        started: datetime | None,
        clock: float | None,
        details: dict[str, JSONValue] | None = None,
    ) -> ItemStatus:
        """Record how an item ended (an error too, when it failed) and report it."""
        if status is ItemStatus.FAILED:
            self.error(ref.scope, message)
        self.add(
            ItemResult(
                ref.scope,
                ref.set_id,
                ref.tier,
                ref.dataset,
                status,
                message,
                snapshot_id,
                node,
                started,
                datetime.now(UTC),
                details or {},
            )
        )
        seconds = round(time.monotonic() - clock, 3) if clock is not None else 0.0
        self.reporter.emit(ItemFinished(ref, status, message, snapshot_id, node, seconds))
        return status

    def finish(self) -> Result:
        return Result(
            operation=self.operation,
            status=status_of(self.items, self.issues),
            items=tuple(self.items),
            issues=tuple(self.issues),
            started=self.started,
            finished=datetime.now(UTC),
            sets=tuple(self.sets),
        )


def status_of(items: list[ItemResult], issues: list[IssueRecord]) -> Status:
    done = [i for i in items if i.status in (ItemStatus.OK, ItemStatus.PARTIAL)]
    if not done:
        return Status.FAILED
    item_scopes = {i.scope for i in items}
    stray_errors = [
        i for i in issues if i.severity is Severity.ERROR and i.scope not in item_scopes
    ]
    if len(done) == len(items) and all(i.status is ItemStatus.OK for i in items):
        return Status.PARTIALLY_FAILED if stray_errors else Status.COMPLETED
    return Status.PARTIALLY_FAILED


def explain(exc: HaprotectError) -> str:
    """An error as one line, with its hint when it has one."""
    return f"{exc.message} (hint: {exc.hint})" if exc.hint else exc.message


def result_to_json(result: Result) -> dict[str, Any]:
    body = to_plain(result)
    assert isinstance(body, dict)
    body["failed"] = [i.scope for i in result.failed]
    return body
