"""Cron fire times in a time zone, fast enough to ask for every job on every tick.

croniter parses the expressions (the policy validates them with it), but
stepping through its iterator costs tens of microseconds a step and, when
clocks go back, fires a daily job twice. Here the fire times of one local
day are computed from croniter's expanded fields and cached, so that "the
next fire after t" and "the latest fire at or before t" are a bisection in
a cached day for the thousands of jobs that share a few schedules.

A schedule is read in its time zone (UTC unless the policy says otherwise).
Daylight saving time follows Vixie cron's rules:

- a local time that is skipped when clocks go forward fires once, at the
  change (02:30 on the night 02:00 becomes 03:00 fires at 03:00); a schedule
  whose hour field is ``*`` just follows real time and skips it;
- a local time that occurs twice when clocks go back fires once, at its
  first occurrence, except for a schedule whose hour field is ``*``, which
  fires in both hours (an hourly job runs every real hour).
"""

from __future__ import annotations

import calendar
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import croniter

#: Every schedule that fires at all fires within this many days (a 29 February).
_SEARCH_DAYS = 8 * 366 + 2
_ANY = "*"
_LAST = "l"


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """One cron expression read in one time zone; see the module for DST."""

    expression: str
    timezone: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    hour_any: bool
    days: frozenset[int] | None
    last_day: bool
    months: frozenset[int] | None
    weekdays: frozenset[int] | None
    #: cron weekday -> which of its occurrences in the month (1-5; 0: the last)
    nth: tuple[tuple[int, frozenset[int]], ...]

    def next_after(self, moment: datetime) -> datetime:
        """The first fire strictly after ``moment`` (UTC)."""
        moment = moment.astimezone(UTC)
        day = self._local_date(moment)
        for offset in range(_SEARCH_DAYS):
            fires = _day_fires(self, day + timedelta(days=offset))
            i = bisect_right(fires, moment)
            if i < len(fires):
                return fires[i]
        raise ValueError(f"cron expression {self.expression!r} never fires")

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last fire at or before ``moment`` (UTC), or None within eight years."""
        moment = moment.astimezone(UTC)
        day = self._local_date(moment)
        for offset in range(_SEARCH_DAYS):
            fires = _day_fires(self, day - timedelta(days=offset))
            i = bisect_right(fires, moment)
            if i:
                return fires[i - 1]
        return None

    def fires_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Every fire in ``[start, end)``, in order (UTC)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        found: list[datetime] = []
        day, last = self._local_date(start), self._local_date(end)
        while day <= last:
            found.extend(f for f in _day_fires(self, day) if start <= f < end)
            day += timedelta(days=1)
        return found

    def mean_interval(self, count: int = 64) -> timedelta:
        """The mean time between ``count`` fires from a fixed date: smaller is more frequent."""
        start = datetime(2001, 1, 1, tzinfo=UTC)
        moment = start
        for _ in range(count):
            moment = self.next_after(moment)
        return (moment - start) / count

    def _local_date(self, moment: datetime) -> date:
        return moment.astimezone(_zone(self.timezone)).date()

    def matches(self, day: date) -> bool:
        """Whether the expression fires at all on local date ``day``."""
        if self.months is not None and day.month not in self.months:
            return False
        dom_any = self.days is None and not self.last_day
        dow_any = self.weekdays is None
        if dom_any and dow_any:
            return True
        month_days = calendar.monthrange(day.year, day.month)[1]
        dom = not dom_any and (
            (self.days is not None and day.day in self.days)
            or (self.last_day and day.day == month_days)
        )
        dow = not dow_any and self._weekday_matches(day, month_days)
        if dom_any:
            return dow
        if dow_any:
            return dom
        return dom or dow

    def _weekday_matches(self, day: date, month_days: int) -> bool:
        weekday = (day.weekday() + 1) % 7  # cron: Sunday 0
        assert self.weekdays is not None
        if weekday not in self.weekdays:
            return False
        for nth_day, which in self.nth:
            if nth_day == weekday:
                week = (day.day - 1) // 7 + 1
                return week in which or (0 in which and day.day + 7 > month_days)
        return True


@lru_cache(maxsize=1024)
def cron_schedule(expression: str, timezone: str = "UTC") -> CronSchedule:
    """The schedule of ``expression`` in ``timezone`` (an IANA name), parsed once.

    Raises ``ValueError`` for an expression croniter does not accept or a
    time zone that is not known.
    """
    _zone(timezone)
    if not croniter.is_valid(expression):
        raise ValueError(f"invalid cron expression {expression!r}")
    parsed = croniter(expression)
    minutes, hours, days, months, weekdays = parsed.expanded[:5]
    nth = {
        int(day): frozenset(0 if w == _LAST else int(w) for w in which)
        for day, which in parsed.nth_weekday_of_month.items()
    }
    return CronSchedule(
        expression=expression,
        timezone=timezone,
        minutes=tuple(range(60)) if minutes == [_ANY] else tuple(sorted(int(m) for m in minutes)),
        hours=tuple(range(24)) if hours == [_ANY] else tuple(sorted(int(h) for h in hours)),
        hour_any=hours == [_ANY],
        days=None if days == [_ANY] else frozenset(int(d) for d in days if d != _LAST),
        last_day=_LAST in days,
        months=None if months == [_ANY] else frozenset(int(m) for m in months),
        weekdays=None if weekdays == [_ANY] else frozenset(int(w) % 7 for w in weekdays),
        nth=tuple(sorted(nth.items())),
    )


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r}") from None


@lru_cache(maxsize=65_536)
def _day_fires(schedule: CronSchedule, day: date) -> tuple[datetime, ...]:
    """The fires of one local day, as sorted UTC instants."""
    if not schedule.matches(day):
        return ()
    zone = _zone(schedule.timezone)
    found: set[datetime] = set()
    for hour in schedule.hours:
        for minute in schedule.minutes:
            local = datetime(day.year, day.month, day.day, hour, minute)
            if zone is UTC:
                found.add(local.replace(tzinfo=UTC))
            else:
                found.update(_instants(local, zone, follow_real_time=schedule.hour_any))
    return tuple(sorted(found))


def _instants(local: datetime, zone: tzinfo, *, follow_real_time: bool) -> list[datetime]:
    """The UTC instants a local wall time stands for, under the module's DST rules."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) != local:  # skipped: clocks went forward
        return [] if follow_real_time else [_change_after(second, first, local, zone)]
    if first != second and follow_real_time:  # it occurs twice: clocks went back
        return [first, second]
    return [first]


def _change_after(low: datetime, high: datetime, local: datetime, zone: tzinfo) -> datetime:
    """The first whole minute between ``low`` and ``high`` whose local time is past ``local``."""
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) / 2
        middle = middle.replace(second=0, microsecond=0)
        if middle <= low:
            break
        if middle.astimezone(zone).replace(tzinfo=None) >= local:
            high = middle
        else:
            low = middle
    return high
