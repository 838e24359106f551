"""Which due jobs start under the limits: by priority, then the most overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.unit.test_service_schedule import job

from haprotect.model.policy import Priority
from haprotect.service.backoff import Backoff
from haprotect.service.jobs import Job
from haprotect.service.limits import Limits, Running, choose
from haprotect.service.schedule import JobState

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)


def ran_at(hours_ago: float) -> JobState:
    at = T0 - timedelta(hours=hours_ago) + timedelta(minutes=1)
    return JobState(at, at)


def started_keys(
    jobs: list[Job],
    states: dict[str, JobState],
    limits: Limits,
    running: list[Running] | None = None,
) -> list[str]:
    choice = choose(jobs, states, running or [], NOW, limits=limits, backoff=Backoff())
    return [s.job.key for s in choice.start]


def test_with_one_run_at_a_time_the_highest_priority_starts_first() -> None:
    jobs = [
        job("item:c1/low", priority=Priority.LOW),
        job("item:c1/normal", priority=Priority.NORMAL),
        job("item:c1/critical", priority=Priority.CRITICAL),
        job("item:c1/high", priority=Priority.HIGH),
    ]
    states = {j.key: ran_at(1) for j in jobs}
    one = Limits(total=1, per_repository=None, per_node=None)
    assert started_keys(jobs, states, one) == ["item:c1/critical"]
    everything = Limits(total=None, per_repository=None, per_node=None)
    assert started_keys(jobs, states, everything) == [
        "item:c1/critical", "item:c1/high", "item:c1/normal", "item:c1/low",
    ]  # fmt: skip


def test_among_equal_priorities_the_most_overdue_starts_first() -> None:
    jobs = [job("item:c1/recent"), job("item:c1/old"), job("item:c1/older")]
    states = {"item:c1/recent": ran_at(1), "item:c1/old": ran_at(3), "item:c1/older": ran_at(6)}
    one = Limits(total=1, per_repository=None, per_node=None)
    assert started_keys(jobs, states, one) == ["item:c1/older"]


def test_the_global_limit_counts_runs_already_going() -> None:
    jobs = [job("item:c1/a"), job("item:c1/b")]
    states = {j.key: ran_at(1) for j in jobs}
    two = Limits(total=2, per_repository=None, per_node=None)
    assert started_keys(jobs, states, two, [Running("item:c1/x", "file:///other")]) == ["item:c1/a"]


def test_the_per_repository_limit_lets_other_repositories_run() -> None:
    jobs = [
        job("item:c1/a1", repository="file:///a"),
        job("item:c1/a2", repository="file:///a"),
        job("item:c1/b1", repository="s3://b/x"),
        job("item:c1/a3", repository="file:///a"),
    ]
    states = {j.key: ran_at(1) for j in jobs}
    limits = Limits(total=None, per_repository=2, per_node=None)
    assert started_keys(jobs, states, limits) == ["item:c1/a1", "item:c1/a2", "item:c1/b1"]
    choice = choose(jobs, states, [], NOW, limits=limits, backoff=Backoff())
    assert [(h.job.key, h.because) for h in choice.held] == [
        ("item:c1/a3", "repository file:///a at its limit (2 at once)")
    ]


def test_the_per_node_limit_holds_a_job_whose_node_is_busy() -> None:
    jobs = [
        job("group:c1/app", nodes=("node2",)),
        job("group:c1/shop", nodes=("node2", "node3")),
        job("item:c1/scratch", nodes=("node1",)),
        job("item:c1/anywhere"),
    ]
    states = {j.key: ran_at(1) for j in jobs}
    limits = Limits(total=None, per_repository=None, per_node=1)
    running = [Running("item:c1/other", "file:///x", ("node1",))]
    choice = choose(jobs, states, running, NOW, limits=limits, backoff=Backoff())
    assert [s.job.key for s in choice.start] == ["group:c1/app", "item:c1/anywhere"]
    assert {h.job.key: h.because for h in choice.held} == {
        "group:c1/shop": "node node2 at its limit (1 at once)",
        "item:c1/scratch": "node node1 at its limit (1 at once)",
    }


def test_a_job_held_by_a_limit_starts_when_the_limit_frees() -> None:
    jobs = [job("item:c1/a"), job("item:c1/b")]
    states = {"item:c1/a": ran_at(1), "item:c1/b": ran_at(2)}
    one = Limits(total=1, per_repository=None, per_node=None)
    assert started_keys(jobs, states, one) == ["item:c1/b"]
    states["item:c1/b"] = JobState(NOW, NOW + timedelta(minutes=1))
    assert started_keys(jobs, states, one) == ["item:c1/a"]
