"""The notifications the service sends: a failed run, a breached RPO, drift found, a test.

Each builder makes a subject that says what and where on one line, a text a
person can act on, and fields a receiver can route by (``job``,
``cluster``, ``application``, ``dataset``...).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from haprotect.service.notify.notification import Kind, Notification
from haprotect.service.status import DataSetStatus, RunOutcome

_ENDED = {
    RunOutcome.FAILED: "failed",
    RunOutcome.PARTIALLY_FAILED: "partially failed",
    RunOutcome.INTERRUPTED: "was interrupted",
    RunOutcome.COMPLETED: "completed",
}


def run_failed(
    *,
    job: str,
    outcome: RunOutcome,
    started: datetime,
    at: datetime,
    run_id: str | None = None,
    errors: Sequence[str] = (),
) -> Notification:
    """A run of ``job`` that did not complete; ``errors`` one line each, as recorded."""
    lines = [f"The backup run of {job} started at {_when(started)} {_ENDED[outcome]}."]
    if errors:
        lines += ["", "Errors:", *(f"- {e}" for e in errors)]
    fields = {"job": job, "outcome": outcome.value, "started": started.isoformat()}
    if run_id is not None:
        fields["run"] = run_id
    return Notification(
        Kind.FAILURE, f"backup of {job} {_ENDED[outcome]}", "\n".join(lines), fields, at
    )


def rpo_breached(status: DataSetStatus, at: datetime) -> Notification:
    """The RPO of ``status``'s data set is breached at ``at``."""
    where = f"{status.cluster}/{status.application}/{status.dataset}"
    last = status.last_complete
    if last is None:
        first = "No complete set of it was ever taken"
    else:
        first = f"Its last complete set, {last.id}, was taken at {_when(last.time)}"
        first += f" ({_age(at - last.time)} ago)"
    expected = (
        "" if status.rpo.due is None else f", and a set was expected at {_when(status.rpo.due)}"
    )
    text = (
        f"The data set {status.dataset} of {status.application} is not protected as its "
        f"schedule ({status.schedule}) promises. {first}{expected}."
    )
    if status.last_run is not None:
        text += f" The last run {_ENDED[status.last_run.outcome]}."
    fields = {
        "cluster": status.cluster,
        "application": status.application,
        "dataset": status.dataset,
        "job": status.job,
        "schedule": status.schedule,
    }
    if last is not None:
        fields["last_complete_set"] = last.id
        fields["last_complete_set_time"] = last.time.isoformat()
    return Notification(Kind.RPO_BREACH, f"RPO breached: {where}", text, fields, at)


def drift_found(
    *, cluster: str, findings: Sequence[str], at: datetime, pending_version: str | None = None
) -> Notification:
    """Drift in ``cluster``: ``findings`` one line each; the regenerated policy pending approval."""
    count = f"{len(findings)} finding{'s' if len(findings) != 1 else ''}"
    lines = [f"The cluster {cluster} no longer matches its policy ({count}):", ""]
    lines += [f"- {f}" for f in findings]
    fields = {"cluster": cluster, "findings": str(len(findings))}
    if pending_version is not None:
        lines += [
            "",
            f"A regenerated policy, version {pending_version}, covers it and waits for approval "
            f"(haprotect policy approve).",
        ]
        fields["pending_version"] = pending_version
    return Notification(Kind.DRIFT, f"drift in {cluster}: {count}", "\n".join(lines), fields, at)


def trial_notification(at: datetime) -> Notification:
    """A notification to try the targets with."""
    text = "This is a test notification from haprotect: this target receives its alerts."
    return Notification(Kind.TEST, "test notification", text, {}, at)


def _when(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="seconds")


def _age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"
