"""Validated field types shared by the policy and the rules file schemas.

Pydantic is used only here, in ``schema.py`` and in ``rules_file.py``: at the
edge where YAML written by people comes in. Models are strict (YAML already
types its scalars, so ``copies: "2"`` is a mistake worth reporting) and
forbid unknown keys (so a misspelt key is an error, not silently ignored).
Numbers have documented maxima (:data:`MAX_COPIES`, :data:`MAX_KEEP`,
:data:`MAX_LAG_SECONDS`, :data:`MAX_HOLD_SECONDS`), schedules must fire, and
repositories must be a store the storage layer opens (docs/policy.md).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from haprotect.policy.schedule import check_fires
from haprotect.storage.repository_url import check_repository

#: The most copies an item may ask for.
MAX_COPIES = 100
#: The most snapshots one ``keep_*`` may keep (hourly ones for over eleven years).
MAX_KEEP = 100_000
#: The largest ``max_lag_seconds``: a year.
MAX_LAG_SECONDS = 366 * 86_400
#: The largest quiescer ``timeout_seconds`` and ``lease_seconds``: a week.
MAX_HOLD_SECONDS = 7 * 86_400

PriorityName = Literal["critical", "high", "normal", "low"]
FallbackName = Literal["primary", "wait", "fail"]
Copies = Annotated[int, Field(ge=1, le=MAX_COPIES)]
Keep = Annotated[int, Field(ge=0, le=MAX_KEEP)]
LagSeconds = Annotated[int, Field(ge=0, le=MAX_LAG_SECONDS)]
HoldSeconds = Annotated[float, Field(gt=0, le=MAX_HOLD_SECONDS, strict=False, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1)]

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


class Strict(BaseModel):
    """The base of every schema model: strict types, no unknown keys, frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def check_cron(value: str) -> str:
    """A five-field cron expression (or ``@hourly``, ``@daily``, ...)."""
    fields = value.split()
    if not value.startswith("@") and len(fields) != 5:
        raise ValueError(
            f"invalid cron expression {value!r}: "
            "expected 5 fields (minute hour day-of-month month day-of-week)"
        )
    check_fires(value)
    return value


def check_where(value: str) -> str:
    """A repository URL (``file:///path``, ``s3://bucket/prefix``) or an absolute path."""
    if "://" in value:
        scheme, rest = value.split("://", 1)
        well_formed = _SCHEME.fullmatch(scheme) is not None and bool(rest)
    else:
        well_formed = value.startswith("/")
    if not well_formed:
        raise ValueError(
            f"invalid repository {value!r}: expected a URL such as file:///path or "
            "s3://bucket/prefix, or an absolute path"
        )
    check_repository(value)
    return value


Cron = Annotated[str, AfterValidator(check_cron)]
Where = Annotated[str, AfterValidator(check_where)]


class RetentionDoc(Strict):
    """A retention as written in YAML; one that keeps nothing is refused."""

    keep_last: Keep = 0
    keep_hourly: Keep = 0
    keep_daily: Keep = 0
    keep_weekly: Keep = 0
    keep_monthly: Keep = 0
    keep_yearly: Keep = 0

    @model_validator(mode="after")
    def _keeps_something(self) -> RetentionDoc:
        if not any(self.model_dump().values()):
            raise ValueError("retention keeps no snapshots: set at least one keep_* above 0")
        return self
