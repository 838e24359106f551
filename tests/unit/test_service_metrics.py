"""/metrics: the overview in Prometheus' text format, read back with prometheus-client's parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from haprotect.service.metrics import exposition, registry
from haprotect.service.status import (
    DataSetStatus,
    JobStatus,
    LastRun,
    Overview,
    RepositoryStatus,
    RunOutcome,
    SetRef,
    rpo_of,
)

NOW = datetime(2026, 12, 7, 12, 10, tzinfo=UTC)
HOURLY = "0 * * * *"


def status(*, since: datetime | None = None, **facts: Any) -> DataSetStatus:
    rpo = rpo_of(facts["schedule"], facts.get("last_complete"), NOW, since=since)
    return DataSetStatus(rpo=rpo, **facts)


def overview() -> Overview:
    fresh = status(
        cluster="lab",
        application="shop",
        dataset="pgdata",
        job="group:lab/shop",
        schedule=HOURLY,
        repository="/srv/repo",
        last_complete=SetRef("s-12", datetime(2026, 12, 7, 12, 0, 5, tzinfo=UTC)),
        last_run=LastRun(
            RunOutcome.COMPLETED,
            datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
            timedelta(seconds=42.5),
            1_048_576,
        ),
        next_run=datetime(2026, 12, 7, 13, 0, tzinfo=UTC),
        copies=("/srv/repo", "s3://bucket/repo"),
        copies_wanted=2,
    )
    stale = status(
        cluster="lab",
        application="wiki",
        dataset="files",
        job="item:lab/files",
        schedule=HOURLY,
        repository="/srv/repo",
        last_complete=SetRef("s-9", datetime(2026, 12, 7, 9, 0, tzinfo=UTC)),
        last_run=LastRun(
            RunOutcome.FAILED, datetime(2026, 12, 7, 12, 0, tzinfo=UTC), timedelta(seconds=3), 0
        ),
        drift=("Filesystem fs_new is not covered",),
    )
    never = status(
        cluster="lab",
        application="wiki",
        dataset="db",
        job="item:lab/db",
        schedule=HOURLY,
        repository="/srv/repo",
        since=datetime(2026, 12, 7, 12, 5, tzinfo=UTC),
    )
    jobs = (
        JobStatus(
            job="group:lab/shop",
            schedule=HOURLY,
            datasets=("lab/pgdata",),
            rpo=rpo_of(HOURLY, None, NOW),
            runs={RunOutcome.COMPLETED: 3, RunOutcome.FAILED: 1},
        ),
    )
    repos = (
        RepositoryStatus("/srv/repo", 5_000_000),
        RepositoryStatus("s3://bucket/repo?endpoint=http://s3&secret_key=hush", 7),
    )
    return Overview(at=NOW, datasets=(fresh, stale, never), jobs=jobs, repositories=repos)


def samples() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = exposition(overview()).decode()
    assert "hush" not in text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def ds(application: str, dataset: str, **more: str) -> frozenset[tuple[str, str]]:
    return frozenset(
        {"cluster": "lab", "application": application, "dataset": dataset, **more}.items()
    )


def test_each_data_set_shows_its_last_set_and_run() -> None:
    got = samples()
    shop = ds("shop", "pgdata")
    assert (
        got[("haprotect_last_complete_set_timestamp_seconds", shop)]
        == datetime(2026, 12, 7, 12, 0, 5, tzinfo=UTC).timestamp()
    )
    assert got[("haprotect_last_run_duration_seconds", shop)] == 42.5
    assert got[("haprotect_last_run_added_bytes", shop)] == 1_048_576
    assert (
        got[("haprotect_next_run_timestamp_seconds", shop)]
        == datetime(2026, 12, 7, 13, 0, tzinfo=UTC).timestamp()
    )
    assert got[("haprotect_copies", shop)] == 2
    assert got[("haprotect_copies_wanted", shop)] == 2


def test_the_last_run_status_is_a_state_set() -> None:
    got = samples()
    for outcome in RunOutcome:
        shop = ds("shop", "pgdata", haprotect_last_run_status=outcome.value)
        files = ds("wiki", "files", haprotect_last_run_status=outcome.value)
        assert got[("haprotect_last_run_status", shop)] == (outcome is RunOutcome.COMPLETED)
        assert got[("haprotect_last_run_status", files)] == (outcome is RunOutcome.FAILED)


def test_rpo_breached_is_zero_or_one() -> None:
    got = samples()
    assert got[("haprotect_rpo_breached", ds("shop", "pgdata"))] == 0
    assert got[("haprotect_rpo_breached", ds("wiki", "files"))] == 1
    assert got[("haprotect_rpo_breached", ds("wiki", "db"))] == 0
    assert got[("haprotect_drift_findings", ds("wiki", "files"))] == 1


def test_unknown_values_have_no_series() -> None:
    got = samples()
    never = ds("wiki", "db")
    assert ("haprotect_last_complete_set_timestamp_seconds", never) not in got
    assert ("haprotect_last_run_duration_seconds", never) not in got
    assert not any(
        name == "haprotect_last_run_status" and ("dataset", "db") in labels for name, labels in got
    )


def test_repositories_show_their_size_without_credentials() -> None:
    got = samples()
    sizes = {
        dict(labels)["repository"]: value
        for (name, labels), value in got.items()
        if name == "haprotect_repository_size_bytes"
    }
    assert sizes["/srv/repo"] == 5_000_000
    (s3,) = (url for url in sizes if url.startswith("s3://"))
    assert "secret_key=<redacted>" in s3


def test_runs_are_counted_by_outcome_with_every_outcome_present() -> None:
    got = samples()
    job = "group:lab/shop"
    counts = {
        o: got[("haprotect_runs_total", frozenset({"job": job, "outcome": o.value}.items()))]
        for o in RunOutcome
    }
    assert counts == {
        RunOutcome.COMPLETED: 3,
        RunOutcome.PARTIALLY_FAILED: 0,
        RunOutcome.FAILED: 1,
        RunOutcome.INTERRUPTED: 0,
    }


def test_the_registry_reads_the_overview_at_each_scrape() -> None:
    from prometheus_client import generate_latest

    seen: list[Overview] = [Overview(at=NOW)]
    made = registry(lambda: seen[-1])
    assert b"haprotect_rpo_breached{" not in generate_latest(made)
    seen.append(overview())
    assert b'haprotect_rpo_breached{application="wiki"' in generate_latest(made)
