"""Cron fire times: croniter's in UTC, and Vixie cron's rules across DST changes in Europe/Paris."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from tests.unit.test_service_schedule import job

from haprotect.service.backoff import Backoff
from haprotect.service.cron import cron_schedule
from haprotect.service.schedule import JobState, next_start

EXPRESSIONS = [
    "0 * * * *",
    "*/15 2-4 1,15 jan-mar mon-fri",
    "0 0 L * *",
    "0 0 * * 5#3",
    "0 0 * * L5",
    "@daily",
    "0 0 * * 7",
    "0 0 29 2 *",
    "0 0 1,15 * 3",
    "*/7 * * * *",
    "30 1 13 * 5",
]
START = datetime(2025, 1, 3, 7, 13, tzinfo=UTC)


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_fires_in_utc_are_croniter_s(expression: str) -> None:
    schedule, ours = cron_schedule(expression), START
    theirs = croniter(expression, START)
    for _ in range(200):
        ours = schedule.next_after(ours)
        assert ours == theirs.get_next(datetime)
    theirs = croniter(expression, START)
    ours = START
    for _ in range(30):
        found = schedule.latest_at_or_before(ours - timedelta(microseconds=1))
        assert found == theirs.get_prev(datetime)
        assert found is not None
        ours = found


def paris(day: str, schedule: str) -> list[str]:
    """The fires of one Paris day, as UTC times of day."""
    zone = ZoneInfo("Europe/Paris")
    start = datetime.fromisoformat(f"{day}T00:00+00:00") - timedelta(days=1)
    fires = cron_schedule(schedule, "Europe/Paris").fires_between(start, start + timedelta(3))
    return [f.strftime("%H:%MZ") for f in fires if f.astimezone(zone).date().isoformat() == day]


def test_spring_forward_a_skipped_time_fires_once_at_the_change() -> None:
    # 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00Z).
    assert paris("2026-03-29", "30 2 * * *") == ["01:00Z"]
    assert paris("2026-03-29", "*/20 2 * * *") == ["01:00Z"]
    assert paris("2026-03-30", "30 2 * * *") == ["00:30Z"]


def test_spring_forward_an_hourly_job_follows_real_time() -> None:
    hours = paris("2026-03-29", "0 * * * *")
    assert len(hours) == 23 and hours[:3] == ["23:00Z", "00:00Z", "01:00Z"]


def test_fall_back_a_daily_job_fires_once_and_an_hourly_one_every_real_hour() -> None:
    # 25 October 2026: 03:00 CEST becomes 02:00 CET (01:00Z); 02:30 happens twice.
    assert paris("2026-10-25", "30 2 * * *") == ["00:30Z"]
    hours = paris("2026-10-25", "0 * * * *")
    assert len(hours) == 25 and hours[2:4] == ["00:00Z", "01:00Z"]


def test_a_daily_job_that_ran_at_the_first_0230_is_not_due_at_the_second() -> None:
    daily = job(schedule="30 2 * * *", timezone="Europe/Paris")
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    state = JobState(first, first + timedelta(minutes=5))
    upcoming = next_start(daily, state, datetime(2026, 10, 25, 1, 45, tzinfo=UTC), Backoff())
    assert upcoming.at == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


def test_an_unknown_time_zone_or_expression_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        cron_schedule("0 * * * *", "Mars/Olympus")
    with pytest.raises(ValueError, match="invalid cron expression"):
        cron_schedule("61 * * * *")


def test_every_minute_fires_each_minute() -> None:
    every = cron_schedule("* * * * *")
    start = datetime(2026, 12, 7, 10, 0, 30, tzinfo=UTC)
    assert every.next_after(start) == datetime(2026, 12, 7, 10, 1, tzinfo=UTC)
    assert every.latest_at_or_before(start) == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert every.mean_interval() == timedelta(minutes=1)
