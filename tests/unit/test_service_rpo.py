"""The RPO a schedule promises: breached once a fire time after the last set passes its grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from haprotect.service.rpo import MINIMUM_GRACE, assess, default_grace, next_fire


def at(hour: int, minute: int = 0, day: int = 7) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


HOURLY = "0 * * * *"


def test_a_set_taken_at_the_last_fire_time_keeps_the_rpo() -> None:
    rpo = assess(HOURLY, at(10), at(10, 59))
    assert not rpo.breached
    assert rpo.due == at(11)
    assert rpo.deadline == at(11, 30)  # half of the hour's interval
    assert rpo.age == timedelta(minutes=59)


def test_a_missed_fire_time_is_forgiven_for_its_grace_then_breached() -> None:
    assert not assess(HOURLY, at(10), at(11, 29)).breached
    assert assess(HOURLY, at(10), at(11, 30)).breached
    assert assess(HOURLY, at(10), at(15)).breached


def test_a_late_catch_up_set_counts_for_the_fire_time_before_it() -> None:
    # The 11:00 run started late, at 11:20: the set keeps the RPO until 12:30.
    rpo = assess(HOURLY, at(11, 20), at(12, 29))
    assert not rpo.breached
    assert rpo.deadline == at(12, 30)


def test_a_short_interval_gets_the_minimum_grace() -> None:
    every_minute = "* * * * *"
    assert default_grace(every_minute, at(10)) == MINIMUM_GRACE
    assert not assess(every_minute, at(10), at(10, 5) + timedelta(seconds=59)).breached
    assert assess(every_minute, at(10), at(10, 6)).breached


def test_irregular_schedules_take_the_interval_after_the_fire_time() -> None:
    twice_a_day = "0 9,17 * * *"
    # 17:00 -> 9:00 next day: 16 hours, grace 8 hours.
    assert default_grace(twice_a_day, at(17)) == timedelta(hours=8)
    assert not assess(twice_a_day, at(9), at(0, 59, day=8)).breached
    assert assess(twice_a_day, at(9), at(1, day=8)).breached


def test_a_configured_grace_replaces_the_default() -> None:
    rpo = assess(HOURLY, at(10), at(11, 11), grace=timedelta(minutes=10))
    assert rpo.breached
    assert rpo.deadline == at(11, 10)


def test_without_any_set_protection_is_measured_from_since() -> None:
    fresh = assess(HOURLY, None, at(10, 40), since=at(10, 15))
    assert not fresh.breached
    assert fresh.age is None
    assert fresh.due == at(11)
    assert assess(HOURLY, None, at(11, 30), since=at(10, 15)).breached


def test_without_any_set_or_start_it_is_breached() -> None:
    rpo = assess(HOURLY, None, at(10))
    assert rpo.breached
    assert rpo.due is None and rpo.deadline is None


def test_schedules_are_read_in_the_given_timezone() -> None:
    paris = timezone(timedelta(hours=1))
    # 02:00 in Paris is 01:00 UTC.
    assert next_fire("0 2 * * *", at(0), tz=paris) == at(1)
    assert next_fire("0 2 * * *", at(0)) == at(2)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        assess(HOURLY, datetime(2026, 12, 7, 10), at(11))


def test_the_grace_is_configured_in_seconds_or_iso_8601() -> None:
    from pydantic import ValidationError

    from haprotect.service.rpo import RpoConfig

    assert RpoConfig.model_validate({"grace": "PT15M"}).grace == timedelta(minutes=15)
    assert RpoConfig.model_validate({"grace": 600}).grace == timedelta(minutes=10)
    assert RpoConfig().grace is None
    with pytest.raises(ValidationError, match="grace"):
        RpoConfig.model_validate({"grace": 0})
