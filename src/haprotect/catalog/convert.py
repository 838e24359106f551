"""Rows to records: the one place the catalog's models become its dataclasses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from haprotect.catalog.models import (
    AlertRow,
    PolicyVersionRow,
    RunEventRow,
    RunRow,
    SetRow,
    TokenRow,
)
from haprotect.catalog.records import (
    Alert,
    AlertKind,
    PolicyVersion,
    Role,
    Run,
    RunEvent,
    RunStatus,
    SetRecord,
    Token,
    Trigger,
    VersionState,
)


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """A time as UTC (a row just written still holds the zone it was given in)."""
    return None if value is None else value.astimezone(UTC)


def version(row: PolicyVersionRow, policy: str) -> PolicyVersion:
    return PolicyVersion(
        id=row.id,
        policy=policy,
        number=row.number,
        text=row.text,
        sha256=row.sha256,
        state=VersionState(row.state),
        created_at=utc(row.created_at),
        created_by=row.created_by,
        decided_at=utc(row.decided_at),
        decided_by=row.decided_by,
        comment=row.comment,
    )


def run(row: RunRow) -> Run:
    return Run(
        id=row.id,
        job=row.job,
        policy_version_id=row.policy_version_id,
        repository=row.repository,
        trigger=Trigger(row.trigger),
        attempt=row.attempt,
        status=RunStatus(row.status),
        queued_at=utc(row.queued_at),
        started_at=utc(row.started_at),
        finished_at=utc(row.finished_at),
        set_id=row.set_id,
        bytes_added=row.bytes_added,
        error=row.error,
        pid=row.pid,
    )


def event(row: RunEventRow) -> RunEvent:
    return RunEvent(
        id=row.id, run_id=row.run_id, at=utc(row.at), kind=row.kind, payload=row.payload
    )


def set_record(row: SetRow) -> SetRecord:
    return SetRecord(
        repository=row.repository,
        set_id=row.set_id,
        application=row.application,
        taken_at=utc(row.taken_at),
        complete=row.complete,
        copied_to=tuple(row.copied_to),
    )


def token(row: TokenRow) -> Token:
    return Token(
        name=row.name,
        role=Role(row.role),
        created_at=utc(row.created_at),
        last_used=utc(row.last_used),
        revoked_at=utc(row.revoked_at),
    )


def alert(row: AlertRow) -> Alert:
    return Alert(
        id=row.id,
        kind=AlertKind(row.kind),
        subject=row.subject,
        text=row.text,
        at=utc(row.at),
        acknowledged=row.acknowledged,
        acknowledged_by=row.acknowledged_by,
    )
