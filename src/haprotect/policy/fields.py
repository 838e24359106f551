"""Validated field types shared by the policy and the rules file schemas.

Pydantic is used only here, in ``schema.py`` and in ``rules_file.py``: at the
edge where YAML written by people comes in. Models are strict (YAML already
types its scalars, so ``copies: "2"`` is a mistake worth reporting) and
forbid unknown keys (so a misspelt key is an error, not silently ignored).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from croniter import croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

PriorityName = Literal["critical", "high", "normal", "low"]
FallbackName = Literal["primary", "wait", "fail"]
NonNegative = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
Name = Annotated[str, Field(min_length=1)]

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def check_cron(value: str) -> str:
    """A five-field cron expression (or ``@hourly``, ``@daily``, ...)."""
    fields = value.split()
    if not value.startswith("@") and len(fields) != 5:
        raise ValueError(
            f"invalid cron expression {value!r}: "
            "expected 5 fields (minute hour day-of-month month day-of-week)"
        )
    if not croniter.is_valid(value):
        raise ValueError(f"invalid cron expression {value!r}")
    return value


def check_where(value: str) -> str:
    """A repository URL (``file:///path``, ``s3://bucket/prefix``) or an absolute path."""
    if "://" in value:
        scheme, rest = value.split("://", 1)
        if _SCHEME.fullmatch(scheme) and rest:
            return value
    elif value.startswith("/"):
        return value
    raise ValueError(
        f"invalid repository {value!r}: expected a URL such as file:///path or "
        "s3://bucket/prefix, or an absolute path"
    )


Cron = Annotated[str, AfterValidator(check_cron)]
Where = Annotated[str, AfterValidator(check_where)]


class RetentionDoc(Strict):
    keep_hourly: NonNegative = 0
    keep_daily: NonNegative = 0
    keep_weekly: NonNegative = 0
    keep_monthly: NonNegative = 0
    keep_yearly: NonNegative = 0

    @model_validator(mode="after")
    def _keeps_something(self) -> RetentionDoc:
        if not any(self.model_dump().values()):
            raise ValueError("retention keeps no snapshots: set at least one keep_* above 0")
        return self
