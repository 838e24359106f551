"""Cron schedules: well formed, and able to fire.

``0 0 30 2 *`` is a valid cron expression that never fires (February has no
30th). croniter looks for the next time within fifty years; every schedule
that fires at all fires within eight (a 29 February), since a cron
expression has no year and the calendar repeats every 400 years.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from functools import lru_cache

from croniter import CroniterBadDateError, croniter

#: From where a schedule is looked at: any date would do.
_START = datetime(2001, 1, 1, tzinfo=UTC)
_YEARS = 50


@lru_cache(maxsize=1024)
def check_fires(value: str) -> None:
    """Raise ``ValueError`` if ``value`` is not a cron expression, or never fires.

    Cached: a policy of thousands of items names a few schedules, and
    croniter takes a millisecond over each (a refusal raises, and is not
    cached).
    """
    if not croniter.is_valid(value):
        raise ValueError(f"invalid cron expression {value!r}")
    try:
        croniter(value, _START, max_years_between_matches=_YEARS).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"cron expression {value!r} never fires: {_why(value)}") from None


def _why(value: str) -> str:
    """Which days of which months the expression asks for, none of which exist."""
    expanded = croniter(value).expanded
    days, months = expanded[2], expanded[3]
    numbers = range(1, 13) if "*" in months else [int(m) for m in months]
    names = [calendar.month_name[m] for m in numbers]
    verb = "has" if len(names) == 1 else "have"
    return f"{_joined(names, 'and')} {verb} no day {_joined([str(d) for d in days], 'or')}"


def _joined(words: list[str], last: str) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"
