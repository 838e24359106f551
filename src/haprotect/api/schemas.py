"""The API's request and response bodies (pydantic), as the OpenAPI document shows them.

Each response model is built from a catalog record or a control view with
``from_attributes``; times are ISO 8601 in UTC, durations are seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from haprotect.catalog.records import AlertKind, Role, RunStatus, Trigger, VersionState

Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Model(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(_Model):
    """Every error: what went wrong, and how to recover when a hint helps."""

    error: str = Field(description="one line naming the object and what is wrong")
    hint: str | None = Field(default=None, description="what to do about it")


class Health(_Model):
    status: Literal["ok"]
    catalog: str = Field(description="the catalog's database, without a password")


# -- status and jobs ---------------------------------------------------------------


class Rpo(_Model):
    breached: bool
    due: datetime | None = Field(description="the fire time whose set is awaited")
    deadline: datetime | None = Field(description="due plus its grace: breached from then on")
    age_seconds: float | None = Field(description="age of the last complete set")


class SetRef(_Model):
    id: str
    time: datetime


class LastRun(_Model):
    outcome: str = Field(description="completed, partially_failed, failed or interrupted")
    started: datetime
    duration_seconds: float
    bytes_added: int


class DataSetStatus(_Model):
    cluster: str
    application: str
    dataset: str
    job: str
    schedule: str
    repository: str
    rpo: Rpo
    last_complete: SetRef | None
    last_run: LastRun | None
    next_run: datetime | None
    copies: list[str] = Field(description="repositories holding the last complete set")
    copies_wanted: int
    drift: list[str] = Field(description="one line per drift finding")


class Status(_Model):
    at: datetime
    datasets: list[DataSetStatus]


class Job(_Model):
    job: str = Field(description="group:<cluster>/<group> or item:<cluster>/<dataset>")
    schedule: str
    datasets: list[str]
    rpo: Rpo
    last_complete: SetRef | None
    last_run: LastRun | None
    next_run: datetime | None
    running: bool


class Started(_Model):
    """A run the service started (or queued): follow it under ``/api/v1/runs/{run_id}``."""

    run_id: int


class RestoreBody(_Request):
    application: Name
    set_id: Name = Field(
        default="latest", description="a set's id, or latest (the newest complete)"
    )
    tiers: list[Name] = Field(default_factory=list, description="empty: every tier")
    target: str | None = Field(
        default=None,
        min_length=1,
        description="a directory to restore under; null: the original place",
    )
    repository: str | None = Field(
        default=None, min_length=1, description="null: the application's primary repository"
    )


# -- policies ----------------------------------------------------------------------


class VersionSummary(_Model):
    policy: str
    number: int
    sha256: str
    state: VersionState
    created_at: datetime
    created_by: str
    decided_at: datetime | None
    decided_by: str | None
    comment: str | None


class Version(VersionSummary):
    text: str = Field(description="the policy's YAML as applied")


class PolicySummary(_Model):
    name: str
    latest: int = Field(description="the newest version's number")
    approved: int | None = Field(description="the number of the version that runs")
    pending: list[int] = Field(description="numbers of versions awaiting review")


class ApplyBody(_Request):
    text: str = Field(min_length=1, description="a policy file's YAML (kind: Policy)")


class Applied(_Model):
    version: VersionSummary
    created: bool = Field(description="false when the text equals the newest version")


class ReviewBody(_Request):
    number: int | None = Field(
        default=None, ge=1, description="the version; null: the newest pending one"
    )
    comment: str | None = Field(default=None, max_length=2000)


class Change(_Model):
    section: str = Field(description="metadata, spec, item, group or excluded")
    key: str
    kind: Literal["added", "removed", "changed"]
    field: str | None
    old: Any = None
    new: Any = None


class Diff(_Model):
    policy: str
    old: int | None = Field(description="null: nothing approved yet, every item is added")
    new: int
    changes: list[Change]


# -- runs, sets, alerts, tokens ------------------------------------------------------


class Run(_Model):
    id: int
    job: str
    policy_version_id: int | None
    repository: str
    trigger: Trigger
    attempt: int
    status: RunStatus
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    set_id: str | None
    bytes_added: int | None
    error: str | None


class RunPage(_Model):
    items: list[Run]
    offset: int
    limit: int
    next_offset: int | None = Field(description="where the next page starts; null: last page")


class RunEvent(_Model):
    id: int
    run_id: int
    at: datetime
    kind: str
    payload: dict[str, Any]


class SetRecord(_Model):
    repository: str
    set_id: str
    application: str
    taken_at: datetime
    complete: bool
    copied_to: list[str]


class SetPage(_Model):
    items: list[SetRecord]
    offset: int
    limit: int
    next_offset: int | None


class Alert(_Model):
    id: int
    kind: AlertKind
    subject: str
    text: str
    at: datetime
    acknowledged: bool
    acknowledged_by: str | None


class Token(_Model):
    name: str
    role: Role
    created_at: datetime
    last_used: datetime | None
    revoked_at: datetime | None


class TokenBody(_Request):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")]
    role: Role


class NewToken(_Model):
    token: Token
    secret: str = Field(description="the bearer token; shown this once, stored nowhere")
