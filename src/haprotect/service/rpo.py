"""The recovery point objective a schedule promises, and whether it is kept.

A job's cron schedule expects a complete set at each of its fire times. The
set of a fire time ``F`` is due by ``F`` plus a grace period (the run takes
time, a catch-up run starts late); the RPO is *breached* at ``now`` when some
fire time after the last complete set has passed its grace period:

    breached  <=>  now >= first fire after the last complete set + grace

The grace period is configured per service, or by default half the interval
from that fire time to the next one, and never less than
:data:`MINIMUM_GRACE` (an every-minute schedule is not breached by a run that
takes two minutes). Both grow with the fire time, so the first fire after the
last set is the first one whose deadline can pass.

A job that never took a complete set is measured from ``since`` (when its
protection began, e.g. the approval of the policy version that added it):
the first fire after ``since`` is due. Without ``since`` it is breached, as
nothing protects it.

Cron expressions are read in ``tz`` (UTC unless the service says otherwise);
every datetime given must be timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field

from haprotect.service.cron import cron_schedule

#: The least grace a fire time gets with the default rule.
MINIMUM_GRACE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Rpo:
    """A job's RPO at one moment.

    ``due`` is the fire time whose set is awaited (None when no set is
    awaited: never, for a job that never took one and has no ``since``),
    ``deadline`` is ``due`` plus its grace: ``breached`` from then on. ``age``
    is how old the last complete set is (None without one).
    """

    breached: bool
    due: datetime | None
    deadline: datetime | None
    age: timedelta | None


def next_fire(schedule: str, after: datetime, tz: tzinfo = UTC) -> datetime:
    """The first fire time of ``schedule`` strictly after ``after`` (the scheduler's own)."""
    _aware(after)
    zone = "UTC" if tz in (UTC, ZoneInfo("UTC")) else getattr(tz, "key", None)
    if zone is None:
        # A fixed offset, not a named zone: croniter reads the schedule in it.
        fire: datetime = croniter(schedule, after.astimezone(tz)).get_next(datetime)
        return fire
    return cron_schedule(schedule, zone).next_after(after).astimezone(tz)


def default_grace(schedule: str, fire: datetime, tz: tzinfo = UTC) -> timedelta:
    """Half the interval from ``fire`` to the next fire time, at least :data:`MINIMUM_GRACE`."""
    return max((next_fire(schedule, fire, tz) - fire) / 2, MINIMUM_GRACE)


def assess(
    schedule: str,
    last_complete: datetime | None,
    now: datetime,
    *,
    since: datetime | None = None,
    grace: timedelta | None = None,
    tz: tzinfo = UTC,
) -> Rpo:
    """The RPO of a job on ``schedule`` whose last complete set was taken at ``last_complete``.

    ``grace`` None applies :func:`default_grace`; ``since`` is when the job's
    protection began (see the module docstring).
    """
    _aware(now)
    age = None if last_complete is None else now - _aware(last_complete)
    start = last_complete if last_complete is not None else since
    if start is None:
        return Rpo(breached=True, due=None, deadline=None, age=age)
    due = next_fire(schedule, _aware(start), tz)
    deadline = due + (grace if grace is not None else default_grace(schedule, due, tz))
    return Rpo(breached=now >= deadline, due=due, deadline=deadline, age=age)


class RpoConfig(BaseModel):
    """The ``rpo`` section of the service's config: ``grace`` for every job, or the default rule.

    ``grace`` is seconds or an ISO 8601 duration (``PT15M``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    grace: timedelta | None = Field(default=None, gt=timedelta(0))


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a naive datetime ({moment.isoformat()}) where a timezone is needed")
    return moment
