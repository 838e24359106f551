"""Backup from the standby and ordered restore, on the real lab (PostgreSQL pair, files).

One lab serves the module; the tests run in file order (a failover in the
middle) and each asks the lab who is primary now.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.integration.conftest import LabEnv, lab_env

from haprotect.engine import ListReporter, list_sets, run_backup, run_restore
from haprotect.engine.backup import RunOptions
from haprotect.engine.events import ItemStarted, TierFinished
from haprotect.engine.planning import plan_backup
from haprotect.lab import Lab, verify_acknowledged
from haprotect.lab.client import post_json, request
from haprotect.lab.pgnode import PgNode
from haprotect.model.inventory import Inventory
from haprotect.model.plan import SnapshotSet
from haprotect.model.policy import Fallback, Policy
from haprotect.model.result import ItemStatus, Result, Status
from haprotect.movers.postgres import stop_restored
from haprotect.pgtools import PgBinaries, PgRunner, running_postmaster
from haprotect.plan import load_inventory, plan_restore
from haprotect.repo import KdfParams

HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
FAST_KDF = KdfParams(n=1 << 10)
PG = "pgsql_shop"
FS = "fs_shared"


@pytest.fixture(scope="module")
def env() -> Iterator[LabEnv]:
    with lab_env("hp-eng-") as made:
        yield made


def backup(env: LabEnv, policy: Policy | None = None) -> tuple[Result, ListReporter]:
    """Discover the lab again, plan with its inventory, back up into the module's repository."""
    policy = policy or env.policy
    plan = plan_backup(policy, load_inventory(env.lab.inventory_path), use_cli=False)
    reporter = ListReporter()
    options = RunOptions(staging=env.root / "staging", wait_seconds=2)
    return run_backup(plan, env.repo, reporter, options), reporter


def latest_set(env: LabEnv) -> SnapshotSet:
    return list_sets(env.repo)[-1]


def item_metadata(env: LabEnv, snapshot_set: SnapshotSet, dataset: str) -> dict[str, Any]:
    item = next(i for i in snapshot_set.items if i.dataset == dataset)
    body = env.repo.snapshot(item.snapshot_id).metadata["item"]
    assert isinstance(body, dict)
    return body


def with_read_from(policy: Policy, **changes: object) -> Policy:
    pg = policy.item(PG)
    changed = replace(pg, read_from=replace(pg.read_from, **changes))  # type: ignore[arg-type]
    return replace(policy, items=tuple(changed if i is pg else i for i in policy.items))


def post_order(lab: Lab) -> str:
    order_id = uuid.uuid4().hex
    post_json(f"{lab.web_url}/api/orders", {"id": order_id, "item": "tea", "quantity": 1})
    return order_id


def upload(lab: Lab, name: str, data: bytes) -> None:
    status, _ = request(
        f"{lab.web_url}/uploads?name={name}",
        method="POST",
        data=data,
        content_type="application/octet-stream",
    )
    assert status == 201


def scalar(dsn: str, sql: str) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    return row[0] if row else None


class PrimaryWatch(threading.Thread):
    """Samples the primary's sessions: WAL senders and anything named pg_basebackup."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.walsenders: set[str] = set()
        self.replication: set[str] = set()
        self.basebackup_sessions = 0
        self.samples = 0

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                for name, kind in conn.execute(
                    "SELECT coalesce(application_name, ''), backend_type FROM pg_stat_activity"
                ).fetchall():
                    if kind == "walsender":
                        self.walsenders.add(name)
                    if name == "pg_basebackup":
                        self.basebackup_sessions += 1
                for (name,) in conn.execute(
                    "SELECT coalesce(application_name, '') FROM pg_stat_replication"
                ).fetchall():
                    self.replication.add(name)
                self.samples += 1
                time.sleep(0.01)

    def __enter__(self) -> PrimaryWatch:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.join()


class Inserter(threading.Thread):
    """Orders through the lab's web tier, flushed to the primary one by one."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.stop = threading.Event()
        self.committed: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                post_order(self.lab)
                self.lab.flush()
                self.committed.append(time.time())
            except Exception as exc:
                self.errors.append(str(exc))
            time.sleep(0.02)


def standby_node(lab: Lab) -> PgNode:
    state = lab.state
    runner = PgRunner(PgBinaries(state.pg_version, Path(state.bindir)), state.run_as, lab.root)
    return PgNode(runner, state.standby_node, lab.paths)


def test_a_backup_from_the_standby_leaves_the_primary_serving_and_untouched(env: LabEnv) -> None:
    lab = env.lab
    standby = lab.standby
    before = scalar(lab.primary_dsn, "SELECT count(*) FROM orders")
    inserter = Inserter(lab)
    inserter.start()
    time.sleep(0.3)
    with PrimaryWatch(lab.primary_dsn) as watch:
        started = time.time()
        result, reporter = backup(env)
        ended = time.time()
    inserter.stop.set()
    inserter.join()
    assert result.status is Status.COMPLETED, result.issues
    assert watch.samples > 10
    assert watch.basebackup_sessions == 0
    assert watch.walsenders == {standby}, watch.walsenders
    assert watch.replication == {standby}
    assert not inserter.errors
    during = [t for t in inserter.committed if started <= t <= ended]
    assert len(during) >= 3, (len(during), ended - started)
    assert scalar(lab.primary_dsn, "SELECT count(*) FROM orders") > before
    after = scalar(
        lab.primary_dsn,
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE backend_type = 'walsender' AND application_name <> "
        f"'{standby}' OR application_name = 'pg_basebackup'",
    )
    assert after == 0
    meta = item_metadata(env, latest_set(env), PG)
    assert (meta["node"], meta["role"], meta["primary"]) == (standby, "standby", lab.primary)
    assert meta["location"]["pgport"] == str(lab.ports[standby])
    details = meta["details"]
    assert details["backup_from"] == "standby"
    assert details["label_backup_from"] == "standby"
    assert details["timeline"] >= 1
    assert isinstance(details["lag_bytes"], int)
    assert {"start_lsn", "end_lsn", "primary_lsn", "replay_lsn"} <= set(details)
    assert any(f"read standby {standby}: streaming" in why for why in meta["why"])
    notes = [e.message for e in reporter.events if getattr(e, "scope", "").endswith(PG)]
    assert any("pg_basebackup from " + standby in n for n in notes)


class SessionCount:
    """Client connections opened on one server (``pg_stat_database.sessions``, PostgreSQL 14+).

    A session is counted once its statistics are flushed, at the latest when it
    ends; :meth:`count` waits until no haprotect session is left on the server.
    """

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        if self.conn.info.server_version < 140000:
            pytest.skip("pg_stat_database.sessions needs PostgreSQL 14")
        time.sleep(1.2)  # our own session's statistics are flushed at most once a second
        self.conn.execute("SELECT 1")
        time.sleep(1.2)
        self.before = self._sessions()

    def restart(self) -> None:
        """Count from now on."""
        self.before += self.count()

    def _sessions(self) -> int:
        row = self.conn.execute("SELECT sum(sessions)::int FROM pg_stat_database").fetchone()
        return int(row[0]) if row else 0

    def count(self) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = self.conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'haprotect%'"
            ).fetchone()
            if row is not None and row[0] == 0:
                break
            time.sleep(0.05)
        return self._sessions() - self.before

    def close(self) -> None:
        self.conn.close()


def without_quiescers(env: LabEnv) -> tuple[Policy, Inventory]:
    """The lab's policy and inventory with no tier held: a backup without a cut."""
    policy = env.policy
    groups = tuple(
        replace(g, tiers=tuple(replace(t, quiesce=()) for t in g.tiers)) for g in policy.groups
    )
    inventory = load_inventory(env.lab.inventory_path)
    return replace(policy, groups=groups), replace(inventory, quiesce={})


def test_a_backup_connects_to_the_primary_once_and_without_a_cut_never(env: LabEnv) -> None:
    """The checkpoint and the cut share one connection; the standby is judged by itself."""
    lab = env.lab
    primary, standby = SessionCount(lab.primary_dsn), SessionCount(lab.standby_dsn)
    try:
        result, reporter = backup(env)
        assert result.status is Status.COMPLETED, result.issues
        notes = [getattr(e, "message", "") for e in reporter.events]
        assert any("database held by postgresql" in n for n in notes)  # a CHECKPOINT
        cut = next(i for i in result.items if i.dataset == PG).details["cut"]
        assert isinstance(cut, dict) and "cut_lsn" in cut and "paused" in cut
        assert primary.count() == 1
        assert standby.count() >= 3  # the count sees haprotect's sessions

        policy, inventory = without_quiescers(env)
        primary.restart()
        standby.restart()
        plan = plan_backup(policy, inventory, use_cli=False)
        options = RunOptions(staging=env.root / "staging", wait_seconds=2)
        result = run_backup(plan, env.repo, ListReporter(), options)
        assert result.status is Status.COMPLETED, result.issues
        item = next(i for i in result.items if i.dataset == PG)
        assert item.node == lab.standby and "cut" not in item.details
        assert primary.count() == 0
        assert standby.count() >= 2
    finally:
        primary.close()
        standby.close()


def test_a_stopped_standby_falls_back_to_the_primary_or_fails(env: LabEnv) -> None:
    lab = env.lab
    primary, standby = lab.primary, lab.standby
    standby_node(lab).stop()
    try:
        with PrimaryWatch(lab.primary_dsn) as watch:
            result, _ = backup(env)
        assert result.status is Status.COMPLETED
        assert watch.basebackup_sessions > 0  # the watch sees a backup when there is one
        meta = item_metadata(env, latest_set(env), PG)
        assert (meta["node"], meta["role"], meta["fallback_used"]) == (primary, "primary", True)
        why = " ".join(meta["why"])
        assert f"{standby} is not usable: cannot connect" in why
        assert f"fallback primary: read the primary {primary}" in why
        assert meta["details"]["backup_from"] == "primary"
        warnings = [i.message for i in result.issues if i.scope.endswith(PG)]
        assert warnings and "fallback primary" in warnings[0]

        failing, _ = backup(env, with_read_from(env.policy, fallback=Fallback.FAIL))
        assert failing.status is Status.PARTIALLY_FAILED
        statuses = {i.dataset: i for i in failing.items}
        assert statuses[FS].status is ItemStatus.OK
        assert statuses[PG].status is ItemStatus.FAILED
        assert "fallback fail" in statuses[PG].message
        assert not latest_set(env).complete
    finally:
        lab.up()
    assert lab.status().healthy


def test_a_lagging_standby_triggers_the_fallback(env: LabEnv) -> None:
    lab = env.lab
    scalar(lab.standby_dsn, "SELECT pg_wal_replay_pause()")
    try:
        post_order(lab)
        lab.flush()
        time.sleep(2.5)
        result, _ = backup(env, with_read_from(env.policy, max_lag_seconds=1))
        assert result.status is Status.COMPLETED
        meta = item_metadata(env, latest_set(env), PG)
        assert meta["node"] == lab.primary
        assert f"{lab.standby} is " in " ".join(meta["why"])
        assert "s behind (limit 1s)" in " ".join(meta["why"])
    finally:
        scalar(lab.standby_dsn, "SELECT pg_wal_replay_resume()")


def test_after_a_failover_the_next_backup_reads_the_new_standby(env: LabEnv) -> None:
    lab = env.lab
    old_primary = lab.primary
    lab.failover()
    assert lab.standby == old_primary
    result, _ = backup(env)
    assert result.status is Status.COMPLETED
    meta = item_metadata(env, latest_set(env), PG)
    assert (meta["node"], meta["role"]) == (old_primary, "standby")
    assert meta["location"]["pgport"] == str(lab.ports[old_primary])
    assert meta["location"]["pgdata"] == str(lab.data_dirs[old_primary])


def test_a_full_restore_brings_back_every_acknowledged_order_and_upload_in_order(
    env: LabEnv,
) -> None:
    lab = env.lab
    load = lab.load(seconds=1.5, rate=20, upload_every=3)  # journals what was acknowledged
    assert load.orders >= 3 and load.uploads >= 3 and not load.failures
    lab.flush()
    cutoff = time.time()
    with psycopg.connect(lab.primary_dsn, autocommit=True) as conn:
        rows_before = set(conn.execute("SELECT id, item, quantity, payload FROM orders").fetchall())
    result, _ = backup(env)
    assert result.status is Status.COMPLETED
    snapshot_set = latest_set(env)
    out = env.root / "restored"
    reporter = ListReporter()
    plan = plan_restore(snapshot_set, load_inventory(lab.inventory_path), to=out)
    restored = run_restore(plan, env.repo, reporter)
    pgdata = out / "database" / PG
    env.restored.append(pgdata)
    assert restored.status is Status.COMPLETED, restored.items
    steps = [
        (type(e).__name__, getattr(e, "tier", None) or e.item.tier)  # type: ignore[union-attr]
        for e in reporter.events
        if isinstance(e, ItemStarted | TierFinished)
    ]
    assert steps[:4] == [
        ("ItemStarted", "storage"),
        ("TierFinished", "storage"),
        ("ItemStarted", "database"),
        ("TierFinished", "database"),
    ]
    port = next(i.details["port"] for i in restored.items if i.dataset == PG)
    dsn = f"host=127.0.0.1 port={port} user=postgres dbname=shop"
    checked = verify_acknowledged(
        lab, flush=False, dsn=dsn, uploads_dir=out / "storage" / FS / "uploads", until=cutoff
    )
    assert checked.ok, checked.summary()
    assert checked.orders_checked >= 3 and checked.uploads_checked >= 3
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows_after = set(conn.execute("SELECT id, item, quantity, payload FROM orders").fetchall())
    assert rows_before <= rows_after
    stop_restored(pgdata)


def test_restoring_one_tier_in_place_leaves_the_others_untouched(env: LabEnv) -> None:
    lab = env.lab
    upload(lab, "keep-me.bin", b"precious bytes")
    result, _ = backup(env)
    assert result.status is Status.COMPLETED
    snapshot_set = latest_set(env)
    (lab.uploads_dir / "keep-me.bin").unlink()
    (lab.uploads_dir / "stray.bin").write_bytes(b"not in the backup")
    late_order = post_order(lab)
    lab.flush()
    postmaster = scalar(lab.primary_dsn, "SELECT pg_postmaster_start_time()")
    plan = plan_restore(
        snapshot_set, load_inventory(lab.inventory_path), tiers=["storage"], overwrite=True
    )
    assert [i.item.dataset for i in plan.items] == [FS]
    assert plan.items[0].in_place and plan.items[0].target == str(lab.shared_dir)
    reporter = ListReporter()
    restored = run_restore(plan, env.repo, reporter)
    assert restored.status is Status.COMPLETED, restored.items
    assert [e.item.dataset for e in reporter.of(ItemStarted)] == [FS]
    assert (lab.uploads_dir / "keep-me.bin").read_bytes() == b"precious bytes"
    assert not (lab.uploads_dir / "stray.bin").exists()
    assert scalar(lab.primary_dsn, "SELECT pg_postmaster_start_time()") == postmaster
    found = scalar(lab.primary_dsn, f"SELECT count(*) FROM orders WHERE id = '{late_order}'")
    assert found == 1
    upload(lab, "after-restore.bin", b"the web tier still writes")
    assert (lab.uploads_dir / "after-restore.bin").exists()


def test_the_dry_run_shows_the_standby_it_would_read(env: LabEnv, tmp_path: Path) -> None:
    from haprotect.policy.io import dump_policy

    policy = tmp_path / "policy.yaml"
    policy.write_text(dump_policy(env.policy))
    done = subprocess.run(
        [
            HAPROTECT,
            "backup",
            str(policy),
            "--inventory",
            str(env.lab.inventory_path),
            "--dry-run",
            "--no-cli",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"{PG} (postgresql): mover postgresql, read from {env.lab.standby} (standby)" in (
        done.stdout
    )
    assert "quiesce order (top-down): frontend, application, database, storage" in done.stdout


def test_a_server_running_in_a_target_is_named_before_any_question(env: LabEnv) -> None:
    result, _ = backup(env)
    assert result.status is Status.COMPLETED
    out = env.root / "restored-twice"  # the server user must reach it: not under tmp_path
    command = [HAPROTECT, "restore", latest_set(env).id, "--repo", env.repo.url, "--to", str(out)]
    password = {**os.environ, "HAPROTECT_PASSWORD": "pw"}
    first = subprocess.run(
        [*command, "--yes", "--keep-running"],
        capture_output=True,
        text=True,
        env=password,
        check=False,
    )
    pgdata = out / "database" / PG
    env.restored.append(pgdata)
    assert first.returncode == 0, first.stderr
    (hint,) = [line for line in first.stdout.splitlines() if "stop it with: " in line]
    stop = hint.split("stop it with: ", 1)[1]
    assert stop.endswith(f"pg_ctl -D {pgdata} stop")
    if os.geteuid() == 0:
        assert stop.startswith("runuser -u postgres -- ")  # pg_ctl refuses to run as root
    pid = running_postmaster(pgdata)
    assert pid is not None
    kept = out / "storage" / FS / "kept-while-asked"
    kept.write_bytes(b"the storage tier is not replaced before the answer")
    second = subprocess.run(
        [*command, "--tier", "storage", "--tier", "database"],
        input="n\n",
        capture_output=True,
        text=True,
        env=password,
        check=False,
    )
    assert second.returncode == 1, second.stderr
    said = " ".join(second.stderr.split())
    problem = f"cannot restore: a PostgreSQL server (pid {pid}) runs in {pgdata}"
    assert problem in said and said.index(problem) < said.index("Restore the others?")
    assert stop in said
    assert kept.exists()
    stopped = subprocess.run(stop, shell=True, capture_output=True, text=True, check=False)
    assert stopped.returncode == 0, stopped.stderr
    assert running_postmaster(pgdata) is None
