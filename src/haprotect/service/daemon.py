"""The service's loop: approved policies carried out on their schedules, by themselves.

Each tick (:meth:`Service.tick`) reads the approved policy versions, turns
them into jobs (:mod:`.jobs`), and starts what is due under the limits
(:mod:`.limits`), each run a child ``haprotect`` process (:mod:`.child`) in
a thread of its own. A backup run that leaves a set goes on, in the same
run, with the copies the policy asks for and with retention in every
repository that holds the set (:mod:`.aftermath`); its events, its end and
the sets are recorded in the catalog, failures raise alerts and
notifications. Maintenance (prune, rotating read-data checks) and drift
checks are jobs of the same loop, on the configuration's schedules.

At start every run the catalog still calls running is marked interrupted
(its process died with the previous service; the quiescers' leases
released its tiers), and the jobs' histories are read back, so that an
outage costs one catch-up run per job, not a burst.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from haprotect.catalog import Catalog
from haprotect.catalog.records import AlertKind, PolicyVersion, Run, RunStatus, Trigger
from haprotect.model.policy import Item, Policy, Priority
from haprotect.service.backoff import Backoff
from haprotect.service.child import ChildOutcome, run_child
from haprotect.service.clock import Clock, SystemClock
from haprotect.service.config import ServiceConfig
from haprotect.service.jobs import Job, build_jobs
from haprotect.service.limits import Limits, Running, choose_from
from haprotect.service.notify.messages import drift_found, run_failed
from haprotect.service.notify.notification import Kind, Notification
from haprotect.service.schedule import JobState, Next, finished, next_start, started
from haprotect.service.status import Overview, RunOutcome

log = logging.getLogger("haprotect.service")

#: How a child's status is recorded.
_RUN_STATUS = {
    "completed": RunStatus.COMPLETED,
    "partially_failed": RunStatus.PARTIALLY_FAILED,
    "failed": RunStatus.FAILED,
    "cancelled": RunStatus.INTERRUPTED,
}

Launcher = Callable[..., ChildOutcome]

#: How often the RPO of every data set is looked at.
RPO_CHECK_EVERY = timedelta(minutes=1)

_OUTCOME = {
    RunStatus.PARTIALLY_FAILED: RunOutcome.PARTIALLY_FAILED,
    RunStatus.FAILED: RunOutcome.FAILED,
    RunStatus.INTERRUPTED: RunOutcome.INTERRUPTED,
}
_ALERT_KIND = {
    Kind.FAILURE: AlertKind.FAILURE,
    Kind.RPO_BREACH: AlertKind.RPO,
    Kind.DRIFT: AlertKind.DRIFT,
    Kind.TEST: AlertKind.FAILURE,
}


@dataclass(frozen=True, slots=True)
class PolicyRun:
    """An approved policy version as the service runs it: its file and its jobs."""

    version: PolicyVersion
    policy: Policy
    file: Path
    jobs: tuple[Job, ...]
    #: Each job's items, by job key (looked up on every status, for thousands of jobs).
    items: Mapping[str, tuple[Item, ...]]

    @property
    def auto_approve(self) -> bool:
        """Whether the policy's rules approve its regenerated versions at once."""
        return self.policy.metadata.rules.auto_approve


@dataclass(slots=True)
class _Active:
    run: Run
    job: Job
    cancel: threading.Event = field(default_factory=threading.Event)


class Service:
    """The protection service (see the module); :meth:`serve` runs it until stopped."""

    def __init__(
        self,
        config: ServiceConfig,
        catalog: Catalog,
        *,
        clock: Clock | None = None,
        launch: Launcher = run_child,
        command: Sequence[str] | None = None,
        notify: Callable[[Notification], object] | None = None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.clock = clock or SystemClock()
        self._launch = launch
        self._command = command
        self._notify = notify
        self._limits = Limits(
            total=config.limits.concurrent,
            per_repository=config.limits.per_repository,
            per_node=config.limits.per_node,
        )
        self._backoff = Backoff(
            base=timedelta(seconds=config.retry.base_seconds),
            factor=config.retry.factor,
            cap=timedelta(seconds=config.retry.cap_seconds),
            max_attempts=config.retry.attempts,
        )
        self._lock = threading.Lock()
        self._policies: dict[str, PolicyRun] = {}
        self._states: dict[str, JobState] = {}
        self._active: dict[str, _Active] = {}
        self._threads: list[threading.Thread] = []
        self.policy_dir = config.state_dir / "policies"
        self._breached: frozenset[tuple[str, str, str]] = frozenset()
        self._next: dict[str, Next] = {}
        self._rpo_checked: datetime | None = None

    # -- start and loop -------------------------------------------------------

    def recover(self) -> list[Run]:
        """Mark the runs the previous service left running interrupted, and alert."""
        interrupted = self.catalog.interrupt_running()
        for run in interrupted:
            self._alert(
                run_failed(
                    job=run.job,
                    outcome=RunOutcome.INTERRUPTED,
                    started=run.started_at or run.queued_at,
                    at=self.clock.now(),
                    run_id=str(run.id),
                    errors=["the service stopped while it ran; leases released its tiers"],
                )
            )
        return interrupted

    def serve(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; then stop the runs and wait for them."""
        self.policy_dir.mkdir(parents=True, exist_ok=True)
        self.recover()
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("the service's tick failed; trying again at the next")
            stop.wait(self.config.tick_seconds)
        self.shutdown()

    def shutdown(self, timeout: float = 60.0) -> None:
        """Cancel the running runs (their tiers resume) and wait for their threads."""
        with self._lock:
            for active in self._active.values():
                active.cancel.set()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def tick(self) -> list[Run]:
        """Start what is due now (and alert on RPOs newly breached); the runs started."""
        self._refresh_policies()
        now = self.clock.now()
        if self._rpo_checked is None or now - self._rpo_checked >= RPO_CHECK_EVERY:
            self._rpo_checked = now
            self.check_rpo()
        with self._lock:
            due = self._due(self._all_jobs(), now)
            running = [
                Running(a.job.key, a.job.repository, a.job.nodes) for a in self._active.values()
            ]
            choice = choose_from(due, running, set(self._active), self._limits)
            runs = []
            for start in choice.start:
                trigger = (
                    Trigger.RETRY
                    if start.next.retry
                    else Trigger.CATCH_UP
                    if start.next.catch_up
                    else Trigger.SCHEDULED
                )
                runs.append(self._start(start.job, trigger, start.next.attempt, now))
        return runs

    def _due(self, jobs: Sequence[Job], now: datetime) -> list[tuple[Job, Next]]:
        """The jobs due at ``now``, first to start first.

        Each job's next start is kept until its state changes (a run starts
        or ends) or its policy does, so that a tick over thousands of jobs
        is a comparison per job, not a schedule lookup.
        """
        due = []
        for job in jobs:
            upcoming = self._next_start(job, now)
            if upcoming.due(now):
                due.append((job, upcoming))
        due.sort(key=lambda pair: (pair[0].rank, pair[1].since, pair[0].key))
        return due

    def _next_start(self, job: Job, now: datetime) -> Next:
        """A job's next start, kept until its state or its policy changes."""
        upcoming = self._next.get(job.key)
        if upcoming is None:
            upcoming = next_start(job, self._state(job.key), now, self._backoff)
            self._next[job.key] = upcoming
        return upcoming

    def run_now(self, job_key: str, *, by: str) -> Run:
        """Start a job at once (a manual run), whatever its schedule; not twice at once."""
        self._refresh_policies()
        with self._lock:
            job = next((j for j in self._all_jobs() if j.key == job_key), None)
            if job is None:
                raise KeyError(job_key)
            if job_key in self._active:
                return self._active[job_key].run
            log.info("%s starts %s by hand", by, job_key)
            return self._start(job, Trigger.MANUAL, 1, self.clock.now())

    def start_restore(
        self,
        application: str,
        *,
        by: str,
        set_ref: str = "latest",
        tiers: Sequence[str] = (),
        target: Path | None = None,
        repository: str | None = None,
    ) -> Run:
        """Restore an application's set (the newest complete one by default) as a run of its own.

        The repository is the application's job's unless named; one restore
        of an application at a time.
        """
        from haprotect.catalog import CatalogConflict, CatalogNotFound
        from haprotect.service.commands import restore_args

        self._refresh_policies()
        with self._lock:
            key = f"restore:{application}"
            if key in self._active:
                raise CatalogConflict(
                    f"a restore of {application} is running (run {self._active[key].run.id})"
                )
            if repository is None:
                job = next((j for j in self.jobs if application in j.applications), None)
                if job is None:
                    raise CatalogNotFound(f"no application {application} in the approved policies")
                repository = job.repository
            repo = self.config.repository(repository)
            args = restore_args(
                repo,
                set_ref,
                application=application,
                tiers=tiers,
                target=target,
                inventory=self.config.inventory,
            )
            run = self.catalog.start_run(key, repository=repo.url, trigger=Trigger.MANUAL)
            log.info("%s restores %s (%s) as run %s", by, application, set_ref, run.id)
            restore = Job(
                key, "restore", "", application, (), "", "UTC", Priority.HIGH, repo.url, ()
            )
            active = _Active(run, restore)
            self._active[key] = active
            thread = threading.Thread(
                target=self._restore, args=(active, args), name=f"run-{run.id}", daemon=True
            )
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
            return run

    def _restore(self, active: _Active, args: Sequence[str]) -> None:
        status, error, set_id = RunStatus.FAILED, None, None
        try:
            outcome = self._child(active.run, args, active.cancel)
            status = _RUN_STATUS.get(outcome.status, RunStatus.FAILED)
            error = outcome.error
            set_id = outcome.sets[0] if outcome.sets else None
        except Exception as exc:
            log.exception("restore run %s failed", active.run.id)
            error = f"the service could not carry out the restore: {exc}"
        finally:
            self.catalog.finish_run(active.run.id, status, set_id=set_id, error=error)
            with self._lock:
                self._active.pop(active.job.key, None)
            if status is not RunStatus.COMPLETED:
                self._alert(self._failure(active, status, error))

    def cancel_run(self, run_id: int, *, by: str) -> None:
        """Stop a running run: its child gets SIGTERM and resumes what it held."""
        from haprotect.catalog import CatalogConflict

        with self._lock:
            active = next((a for a in self._active.values() if a.run.id == run_id), None)
        if active is None:
            run = self.catalog.run(run_id)
            raise CatalogConflict(f"run {run_id} is {run.status.value}: it is not running here")
        log.info("%s cancels run %s", by, run_id)
        active.cancel.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no run is active (tests, shutdown); False on timeout."""
        for thread in list(self._threads):
            thread.join(timeout)
        return not self._active

    # -- status ---------------------------------------------------------------

    def overview(self, *, with_runs: bool = True) -> Overview:
        """The protection status now: per application and data set, and per job.

        Without ``with_runs`` the last runs and their counts are left out
        (one query per job): what the RPO needs is the sets alone.
        """
        from haprotect.service.overview import build_overview

        self._refresh_policies()
        now = self.clock.now()
        with self._lock:
            entries = []
            next_runs = {}
            for policy in self._policies.values():
                since = policy.version.decided_at or policy.version.created_at
                for job in policy.jobs:
                    entries.append((job, policy.items[job.key], since))
                    next_runs[job.key] = max(self._next_start(job, now).at, now)
            running = frozenset(self._active)
        return build_overview(
            self.catalog,
            entries,
            now=now,
            next_runs=next_runs,
            running=running,
            grace=self.config.rpo.grace,
            with_runs=with_runs,
        )

    def check_rpo(self) -> list[Notification]:
        """Alert on each data set whose RPO is breached since the last look."""
        from haprotect.service.notify.alerts import rpo_alerts

        overview = self.overview(with_runs=False)
        notifications, self._breached = rpo_alerts(self._breached, overview)
        for notification in notifications:
            self._alert(notification)
        return list(notifications)

    def metrics_text(self) -> bytes:
        """The Prometheus exposition of the overview."""
        from haprotect.service.metrics import exposition

        return exposition(self.overview())

    @property
    def jobs(self) -> tuple[Job, ...]:
        """The backup jobs of the approved policies."""
        return tuple(j for p in self._policies.values() for j in p.jobs)

    def _all_jobs(self) -> tuple[Job, ...]:
        """The backup jobs, and the maintenance and drift jobs they call for."""
        from haprotect.service.maintenance import maintenance_jobs

        backups = self.jobs
        repositories = {j.repository for j in backups}
        repositories |= {self.config.repository_named(n).url for n in self.config.copy_targets}
        return backups + maintenance_jobs(self.config, repositories, self._policies)

    @property
    def policies(self) -> Mapping[str, PolicyRun]:
        return dict(self._policies)

    # -- policies -------------------------------------------------------------

    def _refresh_policies(self) -> None:
        """Follow the approved versions: a newly approved one replaces its policy's jobs."""
        from haprotect.policy.io import parse_policy

        ids = self.catalog.approved_ids()
        known = {name: p.version.id for name, p in self._policies.items()}
        if ids == known:
            return
        approved = {v.policy: v for v in self.catalog.approved_versions()}
        with self._lock:
            for name in [n for n in self._policies if n not in approved]:
                del self._policies[name]
                self._next.clear()
            for name, version in approved.items():
                current = self._policies.get(name)
                if current is not None and current.version.id == version.id:
                    continue
                origin = f"policy {name} version {version.number}"
                policy = parse_policy(version.text, origin)
                file = self.policy_dir / f"{_file_name(name)}-v{version.number}.yaml"
                jobs = build_jobs(policy)
                self._policies[name] = PolicyRun(
                    version, policy, file, jobs, items_by_job(policy, jobs)
                )
                self._next.clear()

    def _policy_of(self, job: Job) -> PolicyRun | None:
        """The policy a backup job comes from, or a drift job watches; None for maintenance."""
        if job.kind == "drift":
            return self._policies.get(job.name)
        return next((p for p in self._policies.values() if job in p.jobs), None)

    # -- runs -----------------------------------------------------------------

    def _state(self, key: str) -> JobState:
        """A job's history: from memory, or once from the catalog.

        A maintenance job that never ran counts as started now, so that it
        waits for its first fire instead of running at the service's start.
        """
        from haprotect.service.maintenance import MAINTENANCE_KINDS

        state = self._states.get(key)
        if state is None:
            state = _state_from(self.catalog.last_run(key))
            if state.last_start is None and key.split(":", 1)[0] in MAINTENANCE_KINDS:
                state = JobState(last_start=self.clock.now(), last_end=self.clock.now())
            self._states[key] = state
        return state

    def _start(self, job: Job, trigger: Trigger, attempt: int, now: datetime) -> Run:
        policy = self._policy_of(job)
        if policy is not None and not policy.file.exists():
            policy.file.parent.mkdir(parents=True, exist_ok=True)
            policy.file.write_text(policy.version.text)
        run = self.catalog.start_run(
            job.key,
            repository=job.repository,
            trigger=trigger,
            policy_version_id=policy.version.id if policy is not None else None,
            attempt=attempt,
        )
        self._states[job.key] = started(self._state(job.key), now, retry=attempt > 1)
        self._next.pop(job.key, None)
        active = _Active(run, job)
        self._active[job.key] = active
        thread = threading.Thread(
            target=self._carry_out, args=(active, policy), name=f"run-{run.id}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return run

    def _carry_out(self, active: _Active, policy: PolicyRun | None) -> None:
        run, job = active.run, active.job
        status, error, set_id = RunStatus.FAILED, None, None
        try:
            if policy is None or job.kind == "drift":
                status, error = self._maintain(active, policy)
            else:
                status, error, set_id = self._back_up(active, policy)
        except Exception as exc:
            log.exception("run %s of %s failed", run.id, job.key)
            error = f"the service could not carry out the run: {exc}"
        finally:
            self._finish(active, status, error, set_id)

    def _back_up(
        self, active: _Active, policy: PolicyRun
    ) -> tuple[RunStatus, str | None, str | None]:
        from haprotect.service.aftermath import after_backup

        run, job = active.run, active.job
        outcome = self._child(run, self._backup_args(job, policy), active.cancel)
        status = _RUN_STATUS.get(outcome.status, RunStatus.FAILED)
        error = outcome.error
        set_id = outcome.sets[0] if outcome.sets else None
        if set_id is not None and status is not RunStatus.INTERRUPTED:
            items = policy.items[job.key]
            problems = after_backup(self, run, job, items, set_id, outcome, active.cancel)
            if problems and status is RunStatus.COMPLETED:
                status = RunStatus.PARTIALLY_FAILED
                error = "; ".join(problems)
        return status, error, set_id

    def _maintain(self, active: _Active, policy: PolicyRun | None) -> tuple[RunStatus, str | None]:
        from haprotect.service.commands import check_args, prune_args
        from haprotect.service.maintenance import verify_part, verify_parts

        run, job = active.run, active.job
        if job.kind == "drift":
            return self._watch_drift(active, policy)
        repo = self.config.repository(job.repository)
        if job.kind == "prune":
            args = prune_args(repo)
        else:
            parts = verify_parts(job.schedule, self.config.maintenance.verify_period_days)
            done = len(self.catalog.runs(job=job.key, statuses=[RunStatus.COMPLETED], limit=parts))
            args = check_args(repo, verify_part(done, parts), parts)
        outcome = self._child(run, args, active.cancel)
        return _RUN_STATUS.get(outcome.status, RunStatus.FAILED), outcome.error

    def _watch_drift(
        self, active: _Active, policy: PolicyRun | None
    ) -> tuple[RunStatus, str | None]:
        from haprotect.service.drift_watch import describe, watch_drift

        if policy is None:
            return RunStatus.COMPLETED, None
        outcome = watch_drift(
            self,
            active.run,
            policy.version,
            policy.policy,
            policy.file,
            self.config.state_dir / "drift",
            active.cancel,
            auto_approve=policy.auto_approve,
        )
        if outcome.error is not None:
            return RunStatus.FAILED, outcome.error
        if outcome.applied is not None:
            clusters = ", ".join(policy.policy.metadata.clusters)
            self._alert(
                drift_found(
                    cluster=clusters,
                    findings=describe(outcome),
                    at=self.clock.now(),
                    pending_version=f"{policy.version.policy} {outcome.applied.number}",
                )
            )
        return RunStatus.COMPLETED, None

    def _finish(
        self, active: _Active, status: RunStatus, error: str | None, set_id: str | None
    ) -> None:
        run, job = active.run, active.job
        self.catalog.finish_run(run.id, status, set_id=set_id, error=error)
        with self._lock:
            self._states[job.key] = finished(
                self._state(job.key), self.clock.now(), ok=status is RunStatus.COMPLETED
            )
            self._next.pop(job.key, None)
            self._active.pop(job.key, None)
        if status is not RunStatus.COMPLETED:
            self._alert(self._failure(active, status, error))

    def child(
        self, run: Run, args: Sequence[str], cancel: threading.Event | None = None
    ) -> ChildOutcome:
        """Run ``haprotect ARGS`` for ``run``, recording its events."""
        return self._child(run, args, cancel)

    def _child(self, run: Run, args: Sequence[str], cancel: threading.Event | None) -> ChildOutcome:
        sink = _EventRecorder(self.catalog, run.id, self.clock)
        return self._launch(list(args), sink, cancel=cancel, command=self._command)

    def _backup_args(self, job: Job, policy: PolicyRun) -> list[str]:
        from haprotect.service.commands import backup_args

        repo = self.config.repository(job.repository)
        scopes = [] if job.kind == "group" else [f"{job.cluster}/{d}" for d in job.datasets]
        return backup_args(
            policy.file,
            repo,
            applications=job.applications,
            datasets=scopes,
            inventory=self.config.inventory,
            staging=self.config.staging or self.config.state_dir / "staging",
        )

    # -- alerts ---------------------------------------------------------------

    def _failure(self, active: _Active, status: RunStatus, error: str | None) -> Notification:
        run = active.run
        return run_failed(
            job=active.job.key,
            outcome=_OUTCOME.get(status, RunOutcome.FAILED),
            started=run.started_at or run.queued_at,
            at=self.clock.now(),
            run_id=str(run.id),
            errors=(error or "no reason given").splitlines()[-5:],
        )

    def _alert(self, notification: Notification) -> None:
        """Record an alert in the catalog and send its notification to every target."""
        self.catalog.raise_alert(
            _ALERT_KIND[notification.kind], notification.subject, notification.text
        )
        if self._notify is not None:
            try:
                self._notify(notification)
            except Exception:
                log.exception("a notification could not be sent")


class _EventRecorder:
    """Records a child's events in the catalog; progress at most once a second per item."""

    def __init__(self, catalog: Catalog, run_id: int, clock: Clock) -> None:
        self.catalog = catalog
        self.run_id = run_id
        self.clock = clock
        self._last_progress: dict[str, datetime] = {}

    def __call__(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("event") or event.get("type") or "output")
        if kind in ("item_progress", "progress"):
            scope = str(event.get("scope", ""))
            now = self.clock.now()
            last = self._last_progress.get(scope)
            if last is not None and (now - last).total_seconds() < 1.0:
                return
            self._last_progress[scope] = now
        self.catalog.record_event(self.run_id, kind, dict(event))


def _state_from(last: Run | None) -> JobState:
    if last is None:
        return JobState()
    failures = 0
    if last.status in (RunStatus.FAILED, RunStatus.PARTIALLY_FAILED, RunStatus.INTERRUPTED):
        failures = last.attempt
    return JobState(
        last_start=last.started_at or last.queued_at,
        last_end=last.finished_at,
        failures=failures,
    )


def items_by_job(policy: Policy, jobs: Sequence[Job]) -> dict[str, tuple[Item, ...]]:
    """The policy's items of each job, by job key."""
    by_dataset = {(i.cluster, i.dataset): i for i in policy.items}
    return {
        job.key: tuple(
            by_dataset[(job.cluster, d)] for d in job.datasets if (job.cluster, d) in by_dataset
        )
        for job in jobs
    }


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


__all__ = ["PolicyRun", "Service"]
