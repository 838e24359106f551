"""The catalog: policy versions and their review, runs, events, sets, tokens, alerts.

Every test runs on SQLite (a file under tmp_path) and on a real PostgreSQL
server (started once for the session; a fresh database per test).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from haprotect.catalog import (
    AlertKind,
    Catalog,
    CatalogConflict,
    CatalogNotFound,
    Role,
    RunStatus,
    SetRecord,
    Trigger,
    VersionState,
)
from haprotect.testing.pgserver import TemporaryPostgres

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_numbers = itertools.count()


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.db"
    server: TemporaryPostgres = request.getfixturevalue("postgres")
    return server.create_database(f"catalog_{next(_numbers)}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def catalog(url: str, clock: FakeClock) -> Iterator[Catalog]:
    with Catalog.open(url, clock=clock) as opened:
        yield opened


# -- policies ---------------------------------------------------------------------------


def test_a_new_text_is_a_pending_version_and_the_same_text_is_none(catalog: Catalog) -> None:
    first = catalog.apply_policy("web", "one\n", by="alice")
    assert first.created
    assert (first.version.number, first.version.state) == (1, VersionState.PENDING)
    assert first.version.created_by == "alice" and first.version.created_at == T0
    again = catalog.apply_policy("web", "one\n", by="bob")
    assert not again.created and again.version.number == 1
    second = catalog.apply_policy("web", "two\n", by="bob")
    assert second.created and second.version.number == 2
    assert [v.number for v in catalog.versions("web")] == [1, 2]
    assert catalog.approved("web") is None
    assert catalog.version("web").text == "two\n"
    assert catalog.version("web", 1).sha256 == first.version.sha256


def test_approving_supersedes_the_approved_version_and_older_pending_ones(
    catalog: Catalog, clock: FakeClock
) -> None:
    catalog.apply_policy("web", "one\n", by="alice")
    clock.advance(60)
    approved = catalog.approve("web", by="root", comment="looks right")
    assert approved.state is VersionState.APPROVED
    assert (approved.decided_by, approved.decided_at, approved.comment) == (
        "root", T0 + timedelta(seconds=60), "looks right",
    )  # fmt: skip
    catalog.apply_policy("web", "two\n", by="alice")
    catalog.apply_policy("web", "three\n", by="alice")
    assert catalog.approved("web") == approved  # pending versions do not run
    catalog.approve("web", 3, by="root")
    states = {v.number: v.state for v in catalog.versions("web")}
    assert states == {1: VersionState.SUPERSEDED, 2: VersionState.SUPERSEDED,
                      3: VersionState.APPROVED}  # fmt: skip
    approved_now = catalog.approved("web")
    assert approved_now is not None and approved_now.number == 3


def test_rejecting_leaves_the_approved_version_running(catalog: Catalog) -> None:
    catalog.apply_policy("web", "one\n", by="alice")
    catalog.approve("web", by="root")
    catalog.apply_policy("web", "two\n", by="alice")
    rejected = catalog.reject("web", by="root", comment="drops the database")
    assert rejected.state is VersionState.REJECTED and rejected.number == 2
    approved = catalog.approved("web")
    assert approved is not None and approved.number == 1
    assert catalog.pending("web") is None


def test_only_a_pending_version_can_be_decided(catalog: Catalog) -> None:
    catalog.apply_policy("web", "one\n", by="alice")
    catalog.approve("web", 1, by="root")
    with pytest.raises(CatalogConflict, match="version 1 of policy 'web' is approved, not pending"):
        catalog.reject("web", 1, by="root")
    with pytest.raises(CatalogConflict, match="policy 'web' has no pending version"):
        catalog.approve("web", by="root")
    with pytest.raises(CatalogNotFound, match="policy 'web' has no version 7"):
        catalog.approve("web", 7, by="root")
    with pytest.raises(CatalogNotFound, match="no policy 'db' in the catalog"):
        catalog.approve("db", by="root")
    with pytest.raises(CatalogNotFound):
        catalog.versions("db")


def test_auto_approve_approves_at_apply_and_supersedes(catalog: Catalog) -> None:
    catalog.apply_policy("web", "one\n", by="alice", auto_approve=True)
    applied = catalog.apply_policy("web", "two\n", by="alice", auto_approve=True)
    assert applied.version.state is VersionState.APPROVED
    assert applied.version.decided_by == "alice"
    assert [v.state for v in catalog.versions("web")] == [
        VersionState.SUPERSEDED, VersionState.APPROVED,
    ]  # fmt: skip


def test_the_approved_version_of_each_policy(catalog: Catalog) -> None:
    catalog.apply_policy("web", "w1\n", by="a", auto_approve=True)
    catalog.apply_policy("db", "d1\n", by="a")
    catalog.apply_policy("shop", "s1\n", by="a", auto_approve=True)
    catalog.apply_policy("shop", "s2\n", by="a")
    found = [(v.policy, v.text) for v in catalog.approved_versions()]
    assert found == [("shop", "s1\n"), ("web", "w1\n")]
    assert catalog.policies() == ["db", "shop", "web"]
    assert [v.policy for v in catalog.versions()] == ["db", "shop", "shop", "web"]


# -- runs -------------------------------------------------------------------------------


def test_a_run_starts_and_finishes_once(catalog: Catalog, clock: FakeClock) -> None:
    version = catalog.apply_policy("web", "one\n", by="a", auto_approve=True).version
    run = catalog.start_run("group:c1/web", repository="file:///r", trigger=Trigger.SCHEDULED,
                            policy_version_id=version.id, pid=4242)  # fmt: skip
    assert (run.status, run.started_at, run.pid) == (RunStatus.RUNNING, T0, 4242)
    clock.advance(90)
    done = catalog.finish_run(run.id, RunStatus.COMPLETED, set_id="s1", bytes_added=2**40)
    assert done.status is RunStatus.COMPLETED and done.finished_at == T0 + timedelta(seconds=90)
    assert (done.set_id, done.bytes_added) == ("s1", 2**40)
    with pytest.raises(CatalogConflict, match=f"run {run.id} already ended completed"):
        catalog.finish_run(run.id, RunStatus.FAILED)
    with pytest.raises(ValueError, match="cannot finish as running"):
        catalog.finish_run(run.id, RunStatus.RUNNING)
    with pytest.raises(CatalogNotFound, match="no run 999"):
        catalog.run(999)


def test_a_queued_run_is_marked_running(catalog: Catalog, clock: FakeClock) -> None:
    run = catalog.queue_run("item:c1/fs", repository="r", trigger=Trigger.CATCH_UP)
    assert run.status is RunStatus.QUEUED and run.started_at is None
    clock.advance(5)
    started = catalog.mark_running(run.id, pid=7)
    assert started.status is RunStatus.RUNNING and started.started_at == T0 + timedelta(seconds=5)
    assert started.pid == 7 and started.trigger is Trigger.CATCH_UP


def test_at_service_start_running_runs_are_interrupted(catalog: Catalog) -> None:
    running = catalog.start_run("group:c1/web", repository="r", trigger=Trigger.SCHEDULED)
    done = catalog.start_run("group:c1/db", repository="r", trigger=Trigger.MANUAL)
    catalog.finish_run(done.id, RunStatus.FAILED, error="boom")
    queued = catalog.queue_run("group:c1/x", repository="r", trigger=Trigger.RETRY, attempt=2)
    interrupted = catalog.interrupt_running()
    assert [r.id for r in interrupted] == [running.id]
    assert catalog.run(running.id).status is RunStatus.INTERRUPTED
    assert catalog.run(running.id).error
    assert catalog.run(done.id).status is RunStatus.FAILED
    assert catalog.run(queued.id).status is RunStatus.QUEUED and catalog.run(queued.id).attempt == 2
    assert catalog.interrupt_running() == []


def test_runs_newest_first_by_job_and_status(catalog: Catalog, clock: FakeClock) -> None:
    ids = []
    for job in ("group:c1/web", "group:c1/db", "group:c1/web"):
        ids.append(catalog.start_run(job, repository="r", trigger=Trigger.SCHEDULED).id)
        clock.advance(60)
    catalog.finish_run(ids[0], RunStatus.COMPLETED)
    assert [r.id for r in catalog.runs()] == ids[::-1]
    assert [r.id for r in catalog.runs(job="group:c1/web")] == [ids[2], ids[0]]
    last = catalog.last_run("group:c1/web", statuses=[RunStatus.COMPLETED])
    assert last is not None and last.id == ids[0]
    assert catalog.last_run("group:c9/none") is None
    assert len(catalog.runs(limit=1)) == 1


def test_events_of_a_run_follow_in_order(catalog: Catalog) -> None:
    run = catalog.start_run("group:c1/web", repository="r", trigger=Trigger.MANUAL)
    first = catalog.record_event(run.id, "progress", {"bytes": 10, "item": "c1/fs"})
    catalog.record_event(run.id, "item_done", {"ok": True, "nested": {"a": [1, 2]}})
    assert [e.kind for e in catalog.events(run.id)] == ["progress", "item_done"]
    (later,) = catalog.events(run.id, after=first.id)
    assert later.payload == {"ok": True, "nested": {"a": [1, 2]}} and later.at == T0
    with pytest.raises(CatalogNotFound):
        catalog.record_event(12345, "progress", {})


# -- sets -------------------------------------------------------------------------------


def test_sets_are_recorded_copied_and_forgotten(catalog: Catalog) -> None:
    older = SetRecord("file:///r", "s1", "c1/web", T0, complete=False)
    catalog.record_set(older)
    catalog.record_set(SetRecord("file:///r", "s2", "c1/web", T0 + timedelta(hours=1), True))
    catalog.record_set(SetRecord("s3://b/r", "s9", "c1/db", T0, True))
    updated = catalog.record_set(SetRecord("file:///r", "s1", "c1/web", T0, complete=True))
    assert updated.complete
    copied = catalog.add_copy("file:///r", "s2", "s3://b/r")
    copied = catalog.add_copy("file:///r", "s2", "s3://b/r")
    assert copied.copied_to == ("s3://b/r",)
    assert [s.set_id for s in catalog.sets(repository="file:///r")] == ["s2", "s1"]
    assert [s.set_id for s in catalog.sets(application="c1/db")] == ["s9"]
    assert catalog.forget_set("file:///r", "s1") and not catalog.forget_set("file:///r", "s1")
    assert [s.set_id for s in catalog.sets()] == ["s2", "s9"]
    with pytest.raises(CatalogNotFound):
        catalog.add_copy("file:///r", "nope", "x")


# -- tokens -----------------------------------------------------------------------------


def test_a_token_is_shown_once_and_only_its_hash_is_stored(catalog: Catalog, url: str) -> None:
    new = catalog.add_token("ci", Role.OPERATOR)
    assert new.secret.startswith("hapt_") and len(new.secret) > 40
    assert new.token.role is Role.OPERATOR and not new.token.revoked
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM tokens")).all()
    engine.dispose()
    assert len(rows) == 1
    assert not any(new.secret in str(value) for value in rows[0])
    assert [t.name for t in catalog.tokens()] == ["ci"]


def test_tokens_verify_until_revoked(catalog: Catalog, clock: FakeClock) -> None:
    admin = catalog.add_token("alice", Role.ADMIN)
    viewer = catalog.add_token("grafana", Role.VIEWER)
    assert admin.secret != viewer.secret
    clock.advance(120)
    found = catalog.verify_token(admin.secret)
    assert found is not None and found.name == "alice" and found.role is Role.ADMIN
    assert found.last_used == T0 + timedelta(seconds=120)
    assert catalog.verify_token(admin.secret + "x") is None
    assert catalog.verify_token("") is None
    revoked = catalog.revoke_token("alice")
    assert revoked.revoked and revoked.revoked_at == T0 + timedelta(seconds=120)
    assert catalog.verify_token(admin.secret) is None
    assert catalog.verify_token(viewer.secret) is not None
    assert catalog.revoke_token("alice").revoked_at == revoked.revoked_at
    with pytest.raises(CatalogNotFound, match="no token named 'bob'"):
        catalog.revoke_token("bob")
    with pytest.raises(CatalogConflict, match="a token named 'alice' exists"):
        catalog.add_token("alice", Role.VIEWER)


def test_roles_allow_what_the_lesser_roles_do() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR) and not Role.OPERATOR.allows(Role.ADMIN)


# -- alerts and times -------------------------------------------------------------------


def test_alerts_until_acknowledged(catalog: Catalog, clock: FakeClock) -> None:
    first = catalog.raise_alert(AlertKind.DRIFT, "c1", "fs_new is not covered")
    clock.advance(1)
    second = catalog.raise_alert(AlertKind.RPO, "c1/web", "last set 3h old, schedule hourly")
    assert [a.id for a in catalog.alerts()] == [second.id, first.id]
    done = catalog.acknowledge_alert(first.id, by="root")
    assert done.acknowledged and done.acknowledged_by == "root"
    assert [a.kind for a in catalog.alerts(open_only=True)] == [AlertKind.RPO]
    with pytest.raises(CatalogNotFound):
        catalog.acknowledge_alert(999, by="root")


def test_times_come_back_as_utc_whatever_zone_they_went_in(catalog: Catalog) -> None:
    paris = timezone(timedelta(hours=1))
    record = catalog.record_set(
        SetRecord("r", "s", "a", datetime(2026, 3, 1, 13, 0, tzinfo=paris), True)
    )
    assert record.taken_at == T0 and record.taken_at.tzinfo is UTC
    (stored,) = catalog.sets()
    assert stored.taken_at == T0 and stored.taken_at.utcoffset() == timedelta(0)
    with pytest.raises(Exception, match="naive datetime"):
        catalog.raise_alert(AlertKind.FAILURE, "x", "y", at=datetime(2026, 1, 1))
