"""``haprotect schedule``: the runs a policy's schedules give in a window of time."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from haprotect.cli.app import app, reports_errors
from haprotect.errors import UsageError

if TYPE_CHECKING:
    from haprotect.service.jobs import Job
    from haprotect.service.planning import PlannedRun

#: The longest window: a year (a minutely job gives half a million runs).
MAX_HOURS = 366 * 24


@app.command("schedule")
@reports_errors
def schedule_command(
    policy_file: Annotated[
        Path, typer.Argument(help="Policy file (YAML or JSON).", metavar="POLICY")
    ],
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Start of the window, ISO 8601 (2026-12-08T00:00Z); without a zone, UTC. "
            "Default: now.",
            metavar="ISO",
        ),
    ] = None,
    hours: Annotated[
        int, typer.Option("--hours", help="Length of the window in hours.", min=1, max=MAX_HOURS)
    ] = 24,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the jobs and their runs as JSON.")
    ] = False,
) -> None:
    """Show what the service would run: every job of a policy (a consistency
    group, or an item in no group) and each time it starts in the window, in
    time order, with its priority and repository.

    Schedules are read in UTC. A group runs on the most frequent of its
    members' schedules with the highest of their priorities (the JSON's
    `reasons` say when members differ). Concurrency limits are not applied:
    they delay starts by how long runs take, which the plan cannot know.

    Exit status: 0 success, 2 bad usage, 3 unreadable input.
    """
    from datetime import UTC, timedelta

    from haprotect.policy.io import load_policy
    from haprotect.service.clock import SystemClock
    from haprotect.service.jobs import build_jobs
    from haprotect.service.planning import plan_window

    begin = _parse_start(start) if start is not None else SystemClock().now()
    begin = begin.astimezone(UTC)
    end = begin + timedelta(hours=hours)
    jobs = build_jobs(load_policy(policy_file))
    runs = plan_window(jobs, begin, end)
    if as_json:
        sys.stdout.write(json.dumps(_as_json(jobs, runs, begin, end), indent=2) + "\n")
        return
    _print_text(jobs, runs, begin, end, policy_file)


def _parse_start(text: str) -> datetime:
    from datetime import UTC

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--from {text!r}: not an ISO 8601 time (e.g. 2026-12-08T00:00Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def _print_text(
    jobs: tuple[Job, ...], runs: list[PlannedRun], begin: datetime, end: datetime, path: Path
) -> None:
    out = sys.stdout
    out.write(
        f"{path}: {len(jobs)} job{'' if len(jobs) == 1 else 's'}, "
        f"{len(runs)} run{'' if len(runs) == 1 else 's'} from {_when(begin)} to {_when(end)}\n"
    )
    width = max((len(job.key) for job in jobs), default=0)
    rows: dict[str, str] = {}
    for job in jobs:
        what = ", ".join(job.datasets)
        if job.kind == "group":
            what = f"{job.name}: {what}"
        rows[job.key] = f"{job.key:{width}}  {job.priority.value:8}  {job.repository}  {what}"
    out.writelines(f"{_when(run.at)}  {rows[run.job.key]}{_kind(run)}\n" for run in runs)
    out.flush()


def _kind(run: PlannedRun) -> str:
    return "" if run.kind == "scheduled" else f"  ({run.kind})"


def _as_json(
    jobs: tuple[Job, ...], runs: list[PlannedRun], begin: datetime, end: datetime
) -> dict[str, Any]:
    times: dict[str, list[dict[str, str]]] = {job.key: [] for job in jobs}
    for run in runs:
        times[run.job.key].append({"at": run.at.isoformat(), "kind": run.kind})
    return {
        "from": begin.isoformat(),
        "to": end.isoformat(),
        "jobs": [
            {
                "key": job.key,
                "kind": job.kind,
                "cluster": job.cluster,
                "applications": list(job.applications),
                "datasets": list(job.datasets),
                "schedule": job.schedule,
                "timezone": job.timezone,
                "priority": job.priority.value,
                "repository": job.repository,
                "nodes": list(job.nodes),
                "reasons": list(job.reasons),
                "runs": times[job.key],
            }
            for job in jobs
        ],
    }
