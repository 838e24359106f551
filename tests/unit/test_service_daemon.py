"""The service's loop on a real catalog, with runs answered by an injected launcher."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from haprotect.catalog import Catalog, CatalogConflict, CatalogNotFound
from haprotect.catalog.records import AlertKind, RunStatus, Trigger
from haprotect.model.policy import Policy, Retention
from haprotect.model.topology import Cluster
from haprotect.policy.generate import generate
from haprotect.policy.io import dump_policy
from haprotect.policy.rules_file import load_rules
from haprotect.service.child import ChildOutcome
from haprotect.service.clock import FakeClock
from haprotect.service.config import Drift, Limits, Maintenance, RepositoryConfig, ServiceConfig
from haprotect.service.daemon import Service
from haprotect.service.notify.notification import Kind, Notification
from haprotect.testing.builders import shared, topology, web_cluster

START = datetime(2026, 12, 7, 10, 0, 30, tzinfo=UTC)

Answer = Callable[[list[str]], ChildOutcome]


class Launcher:
    """Answers each child run by its verb; remembers what it was asked."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answer = answer or completed_backup
        self.lock = threading.Lock()

    def __call__(
        self,
        args: list[str],
        on_event: Callable[[Mapping[str, Any]], None],
        *,
        cancel: threading.Event | None = None,
        command: Sequence[str] | None = None,
    ) -> ChildOutcome:
        with self.lock:
            self.calls.append(args)
            n = len(self.calls)
        on_event({"event": "run_started", "n": n})
        return self.answer(args)

    def verbs(self) -> list[str]:
        return [" ".join(a[:2]) if a[0] == "repo" else a[0] for a in self.calls]


def completed_backup(args: list[str]) -> ChildOutcome:
    if args[0] == "backup":
        result = {"status": "completed", "sets": ["set-1"]}
        return ChildOutcome("completed", 0, result, None, ("set-1",))
    if args[:2] == ["repo", "forget"]:
        summary = {
            "type": "summary",
            "sets": [{"group": {}, "sets": [{"id": "old", "keep": False}]}],
        }
        return ChildOutcome("completed", 0, None, None, (), summary)
    return ChildOutcome("completed", 0)


def failed_backup(args: list[str]) -> ChildOutcome:
    return ChildOutcome("failed", 11, None, "the standby is unreachable")


def hourly_policy(copies: int = 1) -> Policy:
    policy = generate(
        topology(web_cluster()), load_rules(None), source="x://", now=START - timedelta(days=1)
    )
    items = tuple(
        replace(
            i,
            schedule="0 * * * *",
            copies=copies,
            retention=Retention(keep_daily=7),
            where="/srv/repo",
        )
        for i in policy.items
    )
    return replace(policy, items=items, repository="/srv/repo")


def settle(service: Service) -> None:
    """Tick as the loop does until nothing more starts (held jobs start on later ticks)."""
    for _ in range(10):
        started = service.tick()
        assert service.wait_idle(10)
        if not started:
            return
    raise AssertionError("the service kept starting runs")


def grown_cluster() -> Cluster:
    cluster = web_cluster()
    new = shared("fs_new", "node1", location={"directory": "/srv/new"})
    return replace(cluster, datasets=(*cluster.datasets, new))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def catalog(tmp_path: Path, clock: FakeClock) -> Catalog:
    """A catalog that tells the time by the test's clock, as the service does."""
    return Catalog.open(f"sqlite:///{tmp_path / 'catalog.db'}", clock=clock.now)


def service_for(
    tmp_path: Path, catalog: Catalog, launcher: Launcher, clock: FakeClock, **config: Any
) -> Service:
    settings = ServiceConfig(state_dir=tmp_path / "state", **config)
    return Service(settings, catalog, clock=clock, launch=launcher)


def test_an_approved_policy_runs_each_job_once_and_applies_retention(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    policy = hourly_policy()
    catalog.apply_policy(policy.metadata.name, dump_policy(policy), by="t", auto_approve=True)
    launcher = Launcher()
    service = service_for(tmp_path, catalog, launcher, clock, limits=Limits(concurrent=8))
    runs = service.tick()
    assert service.wait_idle(10)
    jobs = {j.key for j in service.jobs}
    assert {r.job for r in runs} == jobs
    assert launcher.verbs().count("backup") == len(jobs)
    assert launcher.verbs().count("repo forget") == len(jobs)
    forget = next(a for a in launcher.calls if a[:2] == ["repo", "forget"])
    assert forget[forget.index("--keep-daily") + 1] == "7"
    for run in catalog.runs():
        assert (run.status, run.set_id, run.trigger) == (
            RunStatus.COMPLETED,
            "set-1",
            Trigger.SCHEDULED,
        )
    # nothing more is due within the hour: no second run
    clock.advance(timedelta(minutes=20))
    assert [r for r in service.tick() if r.job in jobs] == []
    clock.advance(timedelta(minutes=40))
    assert {r.job for r in service.tick() if r.job in jobs} == jobs
    assert service.wait_idle(10)


def test_a_pending_policy_does_not_run(tmp_path: Path, catalog: Catalog, clock: FakeClock) -> None:
    policy = hourly_policy()
    catalog.apply_policy(policy.metadata.name, dump_policy(policy), by="t")
    launcher = Launcher()
    service = service_for(tmp_path, catalog, launcher, clock)
    assert service.tick() == []
    catalog.approve(policy.metadata.name, by="admin")
    assert service.tick() != []
    assert service.wait_idle(10)


def test_copies_go_to_the_copy_targets_and_are_recorded(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    policy = hourly_policy(copies=2)
    catalog.apply_policy(policy.metadata.name, dump_policy(policy), by="t", auto_approve=True)
    launcher = Launcher()
    service = service_for(
        tmp_path,
        catalog,
        launcher,
        clock,
        repositories=[RepositoryConfig(name="offsite", url="s3://bucket/repo")],
        copy_targets=["offsite"],
        limits=Limits(concurrent=8),
    )
    service.tick()
    assert service.wait_idle(10)
    copies = [a for a in launcher.calls if a[:2] == ["repo", "copy"]]
    assert copies and all(a[2:4] == ["/srv/repo", "s3://bucket/repo"] for a in copies)
    forgets = {a[2] for a in launcher.calls if a[:2] == ["repo", "forget"]}
    assert forgets == {"/srv/repo", "s3://bucket/repo"}
    sets = catalog.sets(repository="/srv/repo")
    assert sets and all(s.copied_to == ("s3://bucket/repo",) for s in sets)


def test_too_few_copy_targets_make_the_run_partial_and_named(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    policy = hourly_policy(copies=2)
    catalog.apply_policy(policy.metadata.name, dump_policy(policy), by="t", auto_approve=True)
    service = service_for(tmp_path, catalog, Launcher(), clock)
    service.tick()
    assert service.wait_idle(10)
    runs = catalog.runs()
    assert runs and all(r.status is RunStatus.PARTIALLY_FAILED for r in runs)
    assert all("asks for 2 copies" in (r.error or "") for r in runs)


def test_a_failure_alerts_and_is_retried_with_backoff(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    policy = hourly_policy()
    catalog.apply_policy(policy.metadata.name, dump_policy(policy), by="t", auto_approve=True)
    launcher = Launcher(failed_backup)
    notes: list[Notification] = []
    settings = ServiceConfig(state_dir=tmp_path / "state", limits=Limits(concurrent=8))
    service = Service(
        settings,
        catalog,
        clock=clock,
        launch=launcher,
        notify=notes.append,
    )
    first = service.tick()
    assert service.wait_idle(10)
    assert {r.status for r in catalog.runs()} == {RunStatus.FAILED}
    assert len(catalog.alerts()) == len(first) and len(notes) == len(first)
    assert "the standby is unreachable" in catalog.alerts()[0].text
    assert {n.kind for n in notes} == {Kind.FAILURE}
    assert "the standby is unreachable" in notes[0].text
    clock.advance(timedelta(seconds=30))
    assert [r for r in service.tick() if r.job.startswith("group:")] == []
    clock.advance(timedelta(seconds=31))
    retries = service.tick()
    assert service.wait_idle(10)
    assert {r.trigger for r in retries} == {Trigger.RETRY}
    assert {r.attempt for r in retries} == {2}


def test_restart_marks_running_runs_interrupted_and_catches_up_once(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    policy = hourly_policy()
    catalog.apply_policy(policy.metadata.name, dump_policy(policy), by="t", auto_approve=True)
    dead = catalog.start_run("group:c/x", repository="/srv/repo", trigger=Trigger.SCHEDULED)
    launcher = Launcher()
    service = service_for(tmp_path, catalog, launcher, clock, limits=Limits(concurrent=8))
    service.tick()
    assert service.wait_idle(10)
    # a fresh service (a restart): the running runs left behind are interrupted
    catalog.start_run("group:c/y", repository="/srv/repo", trigger=Trigger.SCHEDULED)
    clock.advance(timedelta(hours=3, minutes=10))
    restarted = service_for(tmp_path, catalog, Launcher(), clock, limits=Limits(concurrent=8))
    assert sorted(r.job for r in restarted.recover()) == ["group:c/x", "group:c/y"]
    assert catalog.run(dead.id).status is RunStatus.INTERRUPTED
    catch_up = [r for r in restarted.tick() if r.job.startswith("group:")]
    assert restarted.wait_idle(10)
    assert catch_up and {r.trigger for r in catch_up} == {Trigger.CATCH_UP}
    assert [r for r in restarted.tick() if r.job.startswith("group:")] == []


def test_maintenance_waits_for_its_first_fire_then_prunes_and_verifies_in_turn(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    policy = hourly_policy()
    catalog.apply_policy(policy.metadata.name, dump_policy(policy), by="t", auto_approve=True)
    launcher = Launcher()
    service = service_for(
        tmp_path,
        catalog,
        launcher,
        clock,
        limits=Limits(concurrent=8),
        maintenance=Maintenance(prune="0 3 * * *", verify="30 4 * * *", verify_period_days=3),
    )
    service.tick()
    assert service.wait_idle(10)
    assert {v for v in launcher.verbs()} == {"backup", "repo forget"}
    parts = []
    for _ in range(4):
        clock.advance(timedelta(days=1))
        settle(service)
        checks = [a for a in launcher.calls if a[:2] == ["repo", "check"]]
        parts.append(checks[-1][checks[-1].index("--subset") + 1])
    assert parts == ["1/3", "2/3", "3/3", "1/3"]
    assert launcher.verbs().count("repo prune") == 4


def test_drift_applies_a_regenerated_version_for_review_and_alerts(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    policy = hourly_policy()
    name = policy.metadata.name
    catalog.apply_policy(name, dump_policy(policy), by="t", auto_approve=True)
    regenerated = generate(topology(grown_cluster()), load_rules(None), source="x://", now=START)

    def answer(args: list[str]) -> ChildOutcome:
        if args[0] == "drift":
            finding = {"kind": "uncovered", "cluster": "c", "subject": "fs_new", "detail": "HA"}
            report = {"covered": False, "findings": [finding]}
            return ChildOutcome("failed", 1, None, None, (), report)
        if args[0] == "plan":
            Path(args[args.index("--output") + 1]).write_text(dump_policy(regenerated))
        return completed_backup(args)

    launcher = Launcher(answer)
    service = service_for(
        tmp_path,
        catalog,
        launcher,
        clock,
        limits=Limits(concurrent=8),
        drift=Drift(schedule="*/15 * * * *"),
    )
    service.tick()
    assert service.wait_idle(10)
    clock.advance(timedelta(minutes=15))
    service.tick()
    assert service.wait_idle(10)
    versions = catalog.versions(name)
    assert [v.state.value for v in versions] == ["approved", "pending"]
    assert "fs_new" in versions[-1].text
    drift_alerts = [a for a in catalog.alerts() if a.kind is AlertKind.DRIFT]
    assert len(drift_alerts) == 1 and "fs_new" in drift_alerts[0].text
    # the same drift again: no second version, no second alert
    clock.advance(timedelta(minutes=15))
    service.tick()
    assert service.wait_idle(10)
    assert len(catalog.versions(name)) == 2
    assert len([a for a in catalog.alerts() if a.kind is AlertKind.DRIFT]) == 1


def test_a_restore_runs_on_its_own_and_a_second_one_is_refused_while_it_runs(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    policy = hourly_policy()
    catalog.apply_policy(policy.metadata.name, dump_policy(policy), by="t", auto_approve=True)
    release = threading.Event()

    def answer(args: list[str]) -> ChildOutcome:
        if args[0] == "restore":
            release.wait(10)
            return ChildOutcome(
                "completed", 0, {"status": "completed", "sets": ["s9"]}, None, ("s9",)
            )
        return completed_backup(args)

    launcher = Launcher(answer)
    service = service_for(tmp_path, catalog, launcher, clock)
    application = service_for(tmp_path, catalog, Launcher(), clock)
    application._refresh_policies()
    app = next(a for j in application.jobs for a in j.applications)
    run = service.start_restore(app, by="op", target=tmp_path / "restored", tiers=["db"])
    with pytest.raises(CatalogConflict, match="is running"):
        service.start_restore(app, by="op")
    release.set()
    assert service.wait_idle(10)
    args = next(a for a in launcher.calls if a[0] == "restore")
    assert args[1] == "latest" and args[args.index("--to") + 1] == str(tmp_path / "restored")
    assert args[args.index("--tier") + 1] == "db" and "--yes" in args
    assert catalog.run(run.id).status is RunStatus.COMPLETED
    with pytest.raises(CatalogNotFound):
        service.start_restore("no-such-application", by="op")


def test_cancel_stops_a_running_run_and_records_it_interrupted(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    policy = hourly_policy()
    catalog.apply_policy(policy.metadata.name, dump_policy(policy), by="t", auto_approve=True)
    started = threading.Event()

    class Waiting(Launcher):
        def __call__(
            self, args: list[str], on_event: Any, *, cancel: Any = None, command: Any = None
        ) -> ChildOutcome:
            started.set()
            assert cancel is not None and cancel.wait(10)
            return ChildOutcome("cancelled", -15, None, "cancelled")

    service = service_for(tmp_path, catalog, Waiting(), clock)
    run = next(r for r in service.tick() if r.job.startswith("group:"))
    assert started.wait(10)
    service.cancel_run(run.id, by="op")
    assert service.wait_idle(10)
    assert catalog.run(run.id).status is RunStatus.INTERRUPTED
    with pytest.raises(CatalogConflict, match="interrupted"):
        service.cancel_run(run.id, by="op")


def test_the_overview_and_metrics_show_the_last_complete_set_and_rpo_breaches_alert_once(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    policy = hourly_policy()
    catalog.apply_policy(policy.metadata.name, dump_policy(policy), by="t", auto_approve=True)
    launcher = Launcher(completed_backup)
    notes: list[Notification] = []
    settings = ServiceConfig(state_dir=tmp_path / "state", limits=Limits(concurrent=8))
    service = Service(settings, catalog, clock=clock, launch=launcher, notify=notes.append)
    settle(service)
    overview = service.overview()
    assert overview.datasets and all(d.last_complete is not None for d in overview.datasets)
    assert not overview.breached
    families = {f.name: f for f in text_string_to_metric_families(service.metrics_text().decode())}
    last = families["haprotect_last_complete_set_timestamp_seconds"].samples
    assert last and {s.value for s in last} == {START.timestamp()}
    # from now on every backup fails: the RPO is breached once the hour's set is overdue
    launcher.answer = failed_backup
    for _ in range(6):
        clock.advance(timedelta(minutes=20))
        settle(service)
    breaches = [n for n in notes if n.kind is Kind.RPO_BREACH]
    assert len(breaches) == len(overview.datasets)
    assert service.overview().breached
    rpo = families_of(service)["haprotect_rpo_breached"].samples
    assert rpo and {s.value for s in rpo} == {1.0}


def families_of(service: Service) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    text = service.metrics_text().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_a_newly_approved_version_replaces_the_jobs_at_the_next_tick(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    policy = hourly_policy()
    name = policy.metadata.name
    catalog.apply_policy(name, dump_policy(policy), by="t", auto_approve=True)
    service = service_for(tmp_path, catalog, Launcher(), clock, limits=Limits(concurrent=8))
    settle(service)
    first = service.policies[name].version.number
    daily = replace(policy, items=tuple(replace(i, schedule="5 4 * * *") for i in policy.items))
    catalog.apply_policy(name, dump_policy(daily), by="t", auto_approve=True)
    settle(service)
    assert service.policies[name].version.number == first + 1
    assert {j.schedule for j in service.jobs} == {"5 4 * * *"}
