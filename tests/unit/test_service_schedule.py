"""The scheduler's decisions: due-ness, catch-up, retries with backoff, and planning a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from haprotect.model.policy import Priority
from haprotect.service.backoff import Backoff
from haprotect.service.clock import FakeClock
from haprotect.service.jobs import Job
from haprotect.service.limits import Limits, Running, choose
from haprotect.service.planning import plan_window
from haprotect.service.schedule import JobState, finished, next_start, started

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
NO_LIMITS = Limits(total=None, per_repository=None, per_node=None)


def job(key: str = "item:c1/fs", schedule: str = "0 * * * *", **fields: object) -> Job:
    values: dict[str, object] = {
        "key": key,
        "kind": key.split(":", maxsplit=1)[0],
        "cluster": "c1",
        "name": key.rsplit("/", maxsplit=1)[-1],
        "datasets": (key.rsplit("/", maxsplit=1)[-1],),
        "schedule": schedule,
        "timezone": "UTC",
        "priority": Priority.NORMAL,
        "repository": "file:///backup",
        "nodes": (),
        **fields,
    }
    return Job(**values)  # type: ignore[arg-type]


def run_service(
    jobs: list[Job], clock: FakeClock, until: datetime, *, down: tuple[datetime, datetime]
) -> list[tuple[str, datetime]]:
    """Tick every minute, each started run ending at once with success, except while down."""
    states: dict[str, JobState] = {j.key: JobState(T0, T0) for j in jobs}
    starts: list[tuple[str, datetime]] = []
    while clock.now() < until:
        now = clock.now()
        if not down[0] <= now < down[1]:
            for start in choose(jobs, states, [], now, limits=NO_LIMITS, backoff=Backoff()).start:
                key = start.job.key
                states[key] = finished(started(states[key], now, retry=False), now, ok=True)
                starts.append((key, now))
        clock.advance(timedelta(minutes=1))
    return starts


def test_an_hourly_job_runs_once_after_a_three_hour_outage_then_on_its_schedule() -> None:
    clock = FakeClock(T0 + timedelta(minutes=1))
    down = (T0 + timedelta(minutes=30), T0 + timedelta(hours=3, minutes=40))
    starts = run_service([job()], clock, T0 + timedelta(hours=6), down=down)
    times = [at for _, at in starts]
    # 10:00, 11:00 and 12:00 were missed: one catch-up at 12:40, then 13:00, 14:00.
    assert times == [T0 + timedelta(hours=h, minutes=m) for h, m in ((3, 40), (4, 0), (5, 0))]


def test_the_catch_up_says_it_stands_for_the_missed_fires() -> None:
    state = JobState(T0, T0 + timedelta(minutes=5))
    upcoming = next_start(job(), state, T0 + timedelta(hours=3, minutes=40), Backoff())
    assert upcoming.catch_up and upcoming.due(T0 + timedelta(hours=3, minutes=40))
    assert (upcoming.since, upcoming.fire) == (T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    assert "one run stands for them" in upcoming.describe()


def test_a_job_is_not_due_between_fires_and_a_job_that_never_ran_is_due_at_once() -> None:
    now = T0 + timedelta(minutes=20)
    upcoming = next_start(job(), JobState(T0, T0 + timedelta(minutes=3)), now, Backoff())
    assert not upcoming.due(now) and upcoming.at == T0 + timedelta(hours=1)
    never = next_start(job(), JobState(), now, Backoff())
    assert never.due(now) and never.fire == T0


def test_a_failed_run_is_retried_with_exponential_backoff_up_to_its_cap() -> None:
    backoff = Backoff(
        base=timedelta(minutes=1), factor=3, cap=timedelta(minutes=10), max_attempts=5
    )
    assert backoff.delays() == [timedelta(minutes=m) for m in (1, 3, 9, 10)]
    daily = job(schedule="0 0 * * *")
    state = started(JobState(), T0, retry=False)
    end = T0
    attempts: list[tuple[int, timedelta]] = []
    for _ in range(10):
        end += timedelta(seconds=30)
        state = finished(state, end, ok=False)
        upcoming = next_start(daily, state, end, backoff)
        if not upcoming.retry:
            break
        attempts.append((upcoming.attempt, upcoming.at - end))
        state = started(state, upcoming.at, retry=True)
        end = upcoming.at
    assert attempts == [(n + 2, d) for n, d in enumerate(backoff.delays())]
    assert upcoming.at == datetime(2026, 12, 8, tzinfo=UTC) and upcoming.attempt == 1


def test_a_retry_never_runs_past_the_next_fire() -> None:
    backoff = Backoff(base=timedelta(minutes=40))
    state = finished(started(JobState(), T0, retry=False), T0 + timedelta(minutes=10), ok=False)
    first = next_start(job(), state, T0 + timedelta(minutes=10), backoff)
    assert first.retry and first.at == T0 + timedelta(minutes=50)
    failed_again = first.at + timedelta(minutes=1)
    state = finished(started(state, first.at, retry=True), failed_again, ok=False)
    second = next_start(job(), state, failed_again, backoff)
    assert not second.retry and second.at == T0 + timedelta(hours=1)


def test_a_scheduled_run_starts_its_attempts_afresh_and_a_success_clears_them() -> None:
    failing = JobState(T0, T0 + timedelta(minutes=1), failures=3)
    assert started(failing, T0 + timedelta(hours=1), retry=False).failures == 0
    assert started(failing, T0 + timedelta(hours=1), retry=True).failures == 3
    assert finished(failing, T0 + timedelta(minutes=2), ok=True).failures == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"base": timedelta(0)}, "base must be positive"),
        ({"cap": timedelta(seconds=1)}, "cap at least base"),
        ({"factor": 0.5}, "factor must be at least 1"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_a_backoff_that_makes_no_sense_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**fields)  # type: ignore[arg-type]


def test_a_window_lists_each_fire_and_one_catch_up_for_a_job_that_is_behind() -> None:
    hourly, daily = job("item:c1/a"), job("group:c1/app", "30 2 * * *", priority=Priority.HIGH)
    start = T0 + timedelta(minutes=30)
    behind = {"item:c1/a": JobState(T0 - timedelta(hours=5), T0 - timedelta(hours=5))}
    runs = plan_window([hourly, daily], start, start + timedelta(hours=24), behind)
    planned = [(r.job.key, r.at, r.kind) for r in runs]
    assert planned[0] == ("item:c1/a", start, "catch-up")
    assert [at for key, at, _ in planned if key == "item:c1/a"][1:] == [
        T0 + timedelta(hours=h) for h in range(1, 25)
    ]
    assert [(at, kind) for key, at, kind in planned if key == "group:c1/app"] == [
        (datetime(2026, 12, 8, 2, 30, tzinfo=UTC), "scheduled")
    ]
    assert [r.at for r in runs] == sorted(r.at for r in runs)


def test_a_window_of_jobs_with_no_history_starts_at_their_first_fire() -> None:
    runs = plan_window([job()], T0 + timedelta(minutes=1), T0 + timedelta(hours=2))
    assert [(r.at, r.kind) for r in runs] == [(T0 + timedelta(hours=1), "scheduled")]


def test_a_running_job_is_not_started_again_even_when_due() -> None:
    now = T0 + timedelta(hours=2)
    state = started(JobState(T0, T0), T0 + timedelta(hours=1), retry=False)
    choice = choose([job()], {"item:c1/fs": state}, [], now, limits=NO_LIMITS, backoff=Backoff())
    assert choice.start == () and choice.held[0].because == "already running"
    listed = [Running("item:c1/fs", "file:///backup")]
    choice = choose([job()], {}, listed, now, limits=NO_LIMITS, backoff=Backoff())
    assert choice.start == () and choice.held[0].because == "already running"
