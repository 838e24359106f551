"""Status records and the notifications made from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from haprotect.service.notify.alerts import rpo_alerts
from haprotect.service.notify.messages import drift_found, rpo_breached, run_failed
from haprotect.service.notify.notification import Kind, Notification
from haprotect.service.status import (
    DataSetStatus,
    JobStatus,
    LastRun,
    Overview,
    RunOutcome,
    SetRef,
    rpo_of,
)

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def stale(grace: timedelta | None = None) -> DataSetStatus:
    last = SetRef("s-9", datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    return DataSetStatus(
        cluster="lab",
        application="shop",
        dataset="pgdata",
        job="group:lab/shop",
        schedule="0 * * * *",
        repository="/srv/repo",
        rpo=rpo_of("0 * * * *", last, NOW, grace=grace),
        last_complete=last,
        last_run=LastRun(RunOutcome.FAILED, NOW - timedelta(hours=1), timedelta(seconds=5), 0),
        copies=("/srv/repo",),
        copies_wanted=2,
    )


def test_a_data_set_status_carries_its_rpo_and_copies() -> None:
    status = stale()
    assert status.rpo.breached
    assert status.rpo.due == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert status.rpo.age == timedelta(hours=6)
    assert (status.copies_made, status.copies_missing) == (1, 1)
    assert not stale(grace=timedelta(hours=6)).rpo.breached
    assert Overview(at=NOW, datasets=(status, stale(grace=timedelta(hours=6)))).breached == (
        status,
    )


def test_a_job_status_counts_runs_and_cannot_be_changed() -> None:
    runs = {RunOutcome.COMPLETED: 2}
    job = JobStatus(
        job="item:lab/db",
        schedule="*/5 * * * *",
        datasets=("lab/db",),
        rpo=rpo_of("*/5 * * * *", None, NOW),
        runs=runs,
    )
    runs[RunOutcome.FAILED] = 1
    assert dict(job.runs) == {RunOutcome.COMPLETED: 2}
    assert job.rpo.breached  # never a complete set, no start: nothing protects it
    with pytest.raises(AttributeError):
        job.job = "other"  # type: ignore[misc]


def test_the_rpo_breach_notification_says_what_and_since_when() -> None:
    note = rpo_breached(stale(), NOW)
    assert note.kind is Kind.RPO_BREACH
    assert note.subject == "RPO breached: lab/shop/pgdata"
    assert "s-9, was taken at 2026-12-07 09:00:00+00:00 (6 h ago)" in note.text
    assert "a set was expected at 2026-12-07 10:00:00+00:00" in note.text
    assert "The last run failed." in note.text
    assert note.fields["last_complete_set"] == "s-9"
    assert note.fields["job"] == "group:lab/shop"


def test_the_failure_and_drift_notifications() -> None:
    failed = run_failed(
        job="item:lab/db",
        outcome=RunOutcome.INTERRUPTED,
        started=NOW,
        at=NOW,
        run_id="r-17",
        errors=("the service stopped",),
    )
    assert failed.subject == "backup of item:lab/db was interrupted"
    assert "- the service stopped" in failed.text
    assert failed.fields == {
        "job": "item:lab/db",
        "outcome": "interrupted",
        "started": NOW.isoformat(),
        "run": "r-17",
    }
    drift = drift_found(
        cluster="lab", findings=("Filesystem fs_new is not covered",), at=NOW, pending_version="4"
    )
    assert drift.subject == "drift in lab: 1 finding"
    assert "version 4" in drift.text and drift.fields["pending_version"] == "4"


def test_a_subject_is_one_line() -> None:
    with pytest.raises(ValueError, match="one line"):
        Notification(Kind.TEST, "two\nlines", "")


def test_an_rpo_breach_is_notified_once_until_it_recovers() -> None:
    breached = stale()
    kept = stale(grace=timedelta(hours=6))
    notes, keys = rpo_alerts(frozenset(), Overview(at=NOW, datasets=(breached,)))
    assert [n.subject for n in notes] == ["RPO breached: lab/shop/pgdata"]
    assert rpo_alerts(keys, Overview(at=NOW, datasets=(breached,)))[0] == ()
    notes, keys = rpo_alerts(keys, Overview(at=NOW, datasets=(kept,)))
    assert notes == () and keys == frozenset()
    assert len(rpo_alerts(keys, Overview(at=NOW, datasets=(breached,)))[0]) == 1


def test_the_trial_notification() -> None:
    from haprotect.service.notify.messages import trial_notification

    note = trial_notification(NOW)
    assert note.kind is Kind.TEST and note.at == NOW
