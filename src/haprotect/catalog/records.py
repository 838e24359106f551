"""What the catalog hands out: frozen dataclasses and the states they take.

No SQLAlchemy type leaves the catalog: the API, the service and the CLI see
only these. Every time is timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class VersionState(StrEnum):
    """Where a policy version stands in review; only an approved version runs."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    #: was approved (or pending) until a later version of the policy was approved
    SUPERSEDED = "superseded"


class Trigger(StrEnum):
    """Why a run was started."""

    SCHEDULED = "scheduled"
    MANUAL = "manual"
    CATCH_UP = "catch-up"
    RETRY = "retry"


class RunStatus(StrEnum):
    """Where a run stands; the last four are final."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    #: the service stopped (or died) while the run was running
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class Role(StrEnum):
    """What a token may do; each role may do what the ones before it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


class AlertKind(StrEnum):
    FAILURE = "failure"
    RPO = "rpo"
    DRIFT = "drift"


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One stored text of a policy, numbered from 1 per policy."""

    id: int
    policy: str
    number: int
    text: str
    sha256: str
    state: VersionState
    created_at: datetime
    created_by: str
    decided_at: datetime | None = None
    decided_by: str | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of applying a policy text: ``created`` False when it equals the latest."""

    version: PolicyVersion
    created: bool


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a job (``group:<cluster>/<group>`` or ``item:<cluster>/<dataset>``)."""

    id: int
    job: str
    policy_version_id: int | None
    repository: str
    trigger: Trigger
    attempt: int
    status: RunStatus
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    set_id: str | None = None
    bytes_added: int | None = None
    error: str | None = None
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class RunEvent:
    id: int
    run_id: int
    at: datetime
    kind: str
    payload: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class SetRecord:
    """A snapshot set seen in a repository, and the repositories it was copied to."""

    repository: str
    set_id: str
    application: str
    taken_at: datetime
    complete: bool
    copied_to: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Token:
    """An API token as stored: its name and role, never the secret."""

    name: str
    role: Role
    created_at: datetime
    last_used: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: ``secret`` is shown once and stored nowhere."""

    token: Token
    secret: str


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: AlertKind
    subject: str
    text: str
    at: datetime
    acknowledged: bool = False
    acknowledged_by: str | None = None
