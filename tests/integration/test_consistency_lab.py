"""Consistent multi-tier backups on the real lab: hold top-down, cut, resume, copy.

One lab serves the module. The lab's inventory gives the application an
``app-flush``; the generated policy gives the database a ``postgresql``
checkpoint. The front end is held at the lab's web gate, in two variants
(``gated``): the HTTP gate (an ``http-gate`` from the inventory), then the
same lab brought up again with ``--web-gate haproxy`` (a ``haproxy``
quiescer, which the policy generated from the CIB's ``ocf:heartbeat:haproxy``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict
from tests.conftest import require_component
from tests.integration.conftest import LabEnv, lab_env, lab_policy

from haprotect.engine import ListReporter, list_sets, run_backup, run_restore
from haprotect.engine.backup import MoverLookup, RunOptions
from haprotect.engine.planning import plan_backup
from haprotect.errors import ComponentError
from haprotect.lab import Lab, LabLoad, read_journal, verify_acknowledged
from haprotect.lab.haproxy import FRONTEND, HINT, find_haproxy
from haprotect.lab.journal import ORDER, UPLOAD
from haprotect.model.inventory import Inventory
from haprotect.model.plan import PlanItem, SourceHealth
from haprotect.model.policy import Policy, TierQuiescer
from haprotect.model.result import Result, Status
from haprotect.movers import (
    BackupJob,
    BackupOutcome,
    CutHandle,
    CutRequest,
    Mover,
    RestoreJob,
    RestoreOutcome,
    get_mover,
    pgreplay,
)
from haprotect.movers.pgcheck import Endpoint, catch_up, lsn_int, primary_lsn
from haprotect.movers.postgres import stop_restored
from haprotect.plan import load_inventory, plan_restore
from haprotect.policy.io import dump_policy
from haprotect.quiesce import haproxy_api

HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
PG = "pgsql_shop"
FS = "fs_shared"


@pytest.fixture(scope="module")
def env() -> Iterator[LabEnv]:
    with lab_env("hp-cons-") as made:
        yield made


#: The quiescer that holds the front end at each kind of web gate.
GATE_QUIESCER = {"http": "http-gate", "haproxy": "haproxy"}


@pytest.fixture(scope="module", params=["http", "haproxy"])
def gated(request: pytest.FixtureRequest, env: LabEnv) -> LabEnv:
    """The module's lab with the web gate ``request.param`` in front of its web tier."""
    if request.param == "haproxy":
        require_component("haproxy", find_haproxy() is not None, HINT)
    lab = Lab(env.lab.root, web_gate=request.param)
    lab.up()
    assert lab.web_gate == request.param
    return replace(env, lab=lab, policy=lab_policy(lab))


def backup(env: LabEnv, policy: Policy | None = None, movers: MoverLookup = get_mover) -> Result:
    policy = policy or env.policy
    plan = plan_backup(policy, load_inventory(env.lab.inventory_path), use_cli=False)
    options = RunOptions(staging=env.root / "staging", wait_seconds=2)
    return run_backup(plan, env.repo, ListReporter(), options, movers=movers)


def with_hook(policy: Policy, tier: str, hook: TierQuiescer) -> Policy:
    groups = tuple(
        replace(
            g,
            tiers=tuple(
                replace(t, quiesce=(*t.quiesce, hook)) if t.name == tier else t for t in g.tiers
            ),
        )
        for g in policy.groups
    )
    return replace(policy, groups=groups)


def gate_state(lab: Lab) -> str:
    """``held`` or ``open``: the HTTP gate's state, or whether HAProxy accepts connections."""
    if lab.web_gate == "haproxy":
        socket = str(lab.haproxy_socket)
        limit = int(haproxy_api.info(socket, 5.0)["Maxconn"])
        frontend = haproxy_api.frontends(socket, 5.0)[FRONTEND].limit
        return "held" if limit <= 1 or frontend == 0 else "open"
    status: dict[str, Any] = httpx.get(f"{lab.gate_admin_url}/status", trust_env=False).json()
    return str(status["state"])


def serves(lab: Lab) -> bool:
    try:
        return httpx.get(f"{lab.web_url}/health", trust_env=False, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def quiesce_meta(env: LabEnv) -> dict[str, Any]:
    snapshot_set = list_sets(env.repo)[-1]
    item = next(i for i in snapshot_set.items if i.dataset == PG)
    block = env.repo.snapshot(item.snapshot_id).metadata["set"]
    assert isinstance(block, dict)
    found: dict[str, Any] = block["quiesce"]
    return found


class Flusher:
    """Has the application write its buffer to the database every ``interval`` seconds.

    So that orders sent after the cut reach the database while the copy runs:
    a copy that is not exactly the cut would hold them.
    """

    def __init__(self, lab: Lab, interval: float = 0.05) -> None:
        self.lab, self.interval = lab, interval
        self.flushed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Flusher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flushed += self.lab.flush()


class CheckpointFirst(Mover):
    """The PostgreSQL mover, started once the primary has checkpointed writes made after the cut.

    A standby that follows the primary replays that checkpoint and begins its
    base backup there, so its copy holds those writes unless its replay stood
    still at the cut. Its cut is the PostgreSQL mover's own.
    """

    name = "postgresql"

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.inner: Mover = get_mover("postgresql")

    def applies_to(self, kind: str) -> bool:
        return self.inner.applies_to(kind)

    def probe(self, item: PlanItem, node: str, inventory: Inventory) -> SourceHealth:
        return self.inner.probe(item, node, inventory)

    def restore(self, job: RestoreJob) -> RestoreOutcome:
        return self.inner.restore(job)

    def cut_needs_source(self, item: PlanItem) -> bool:
        return self.inner.cut_needs_source(item)

    def prepare_cut(self, request: CutRequest) -> CutHandle | None:
        return self.inner.prepare_cut(request)

    def quiescer_options(
        self, item: PlanItem, inventory: Inventory, quiescer: str
    ) -> Mapping[str, str]:
        return self.inner.quiescer_options(item, inventory, quiescer)

    def backup(self, job: BackupJob) -> BackupOutcome:
        time.sleep(0.5)  # orders sent after the cut are served and flushed meanwhile
        with psycopg.connect(self.lab.dsn(self.lab.primary), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        time.sleep(0.3)
        return self.inner.backup(job)


def restored_orders(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {str(row[0]) for row in conn.execute("SELECT id FROM orders").fetchall()}


def test_a_quiesced_backup_under_load_loses_nothing_and_restores_the_cut(gated: LabEnv) -> None:
    env = gated
    lab = env.lab
    loads = [
        LabLoad(lab.web_url, lab.journal_path, rate=15.0, upload_every=3, seed=i) for i in range(2)
    ]
    for load in loads:
        load.start()
    try:
        with Flusher(lab) as flusher:
            time.sleep(1.5)
            late = CheckpointFirst(lab)
            result = backup(env, movers=lambda n: late if n == late.name else get_mover(n))
            time.sleep(1.0)
    finally:
        reports = [load.stop() for load in loads]
    assert flusher.flushed > 0
    assert result.status is Status.COMPLETED, result.issues
    assert sum(r.failures for r in reports) == 0, [r.errors for r in reports]
    assert sum(r.acknowledged for r in reports) > 20
    # Nothing acknowledged and nothing queued at the gate was lost.
    live = verify_acknowledged(lab)
    assert live.ok, live.summary()

    quiesce = quiesce_meta(env)
    windows = {w["tier"]: w for w in quiesce["windows"]}
    gate = GATE_QUIESCER[lab.web_gate]
    assert [w["kind"] for w in quiesce["windows"]] == [gate, "app-flush", "postgresql"]
    assert all(w["held_at"] and w["resumed_at"] for w in windows.values())
    assert quiesce["issues"] == [] and quiesce["aborted"] is None
    cut_lsn = quiesce["cuts"][f"haprotect-lab/{PG}"]["cut_lsn"]
    assert cut_lsn and quiesce["cuts"][f"haprotect-lab/{FS}"]["cut"]
    held_at = datetime.fromisoformat(windows["frontend"]["held_at"]).timestamp()

    out = env.root / f"restored-cut-{lab.web_gate}"
    snapshot_set = list_sets(env.repo)[-1]
    plan = plan_restore(snapshot_set, load_inventory(lab.inventory_path), to=out)
    restored = run_restore(plan, env.repo, ListReporter())
    pgdata = out / "database" / PG
    env.restored.append(pgdata)
    assert restored.status is Status.COMPLETED, restored.items
    port = next(i.details["port"] for i in restored.items if i.dataset == PG)
    dsn = f"host=127.0.0.1 port={port} user=postgres dbname=shop"
    uploads = out / "storage" / FS / "uploads"
    # Every order and upload acknowledged before the gate held is in the copy.
    checked = verify_acknowledged(lab, flush=False, dsn=dsn, uploads_dir=uploads, until=held_at)
    assert checked.ok, checked.summary()
    assert checked.orders_checked >= 5
    # And nothing sent after the gate held (queued, then served after the cut) is:
    # the copy is the cut, not what the database held when the copy ended.
    cut = quiesce["cuts"][f"haprotect-lab/{PG}"]
    assert cut["paused"] == lab.standby and cut["pause_lsn"]
    later = [e for e in read_journal(lab.journal_path) if e.sent is not None and e.sent > held_at]
    later_orders = {e.id for e in later if e.kind == ORDER}
    later_uploads = {e.id for e in later if e.kind == UPLOAD}
    assert later_orders and later_uploads
    assert later_orders <= restored_orders(lab.dsn(lab.primary))  # they were committed...
    assert not later_orders & restored_orders(dsn)  # ...after the cut
    assert not {p.name for p in uploads.iterdir()} & later_uploads
    assert replay_state(endpoint(lab, lab.standby))[0] == "not paused"
    stop_restored(pgdata)


def test_a_failing_pre_hook_with_fail_aborts_with_every_tier_resumed(gated: LabEnv) -> None:
    env = gated
    hook = TierQuiescer("command", 10.0, 20.0, "fail", {"pre": ["/bin/sh", "-c", "exit 1"]})
    result = backup(env, with_hook(env.policy, "database", hook))
    assert result.status is Status.FAILED
    assert all("could not be quiesced" in i.message for i in result.items)
    assert gate_state(env.lab) == "open"
    assert serves(env.lab)
    assert "command of tier database" in " ".join(i.message for i in result.issues)


def test_a_failing_pre_hook_with_continue_ends_partially_failed_and_says_why(
    gated: LabEnv,
) -> None:
    env = gated
    hook = TierQuiescer("command", 10.0, 20.0, "continue", {"pre": ["/bin/sh", "-c", "exit 1"]})
    result = backup(env, with_hook(env.policy, "database", hook))
    assert result.status is Status.PARTIALLY_FAILED
    why = [i.message for i in result.issues if "quiesce command" in i.message]
    assert why and "tier database (hold)" in why[0], result.issues
    assert gate_state(env.lab) == "open"
    assert serves(env.lab)


def test_kill_9_while_held_lets_every_tier_serve_within_its_lease(gated: LabEnv) -> None:
    env = gated
    lab, root = env.lab, env.root
    lease = 6.0
    inventory: dict[str, Any] = yaml.safe_load(lab.inventory_path.read_text())
    for specs in inventory["quiesce"].values():
        for spec in specs:
            spec["timeout_seconds"], spec["lease_seconds"] = 5.0, lease
    short = root / "short-lease.yaml"
    short.write_text(json.dumps(inventory))
    hook = TierQuiescer("command", 60.0, 60.0, "fail", {"pre": ["sleep", "30"]})
    policy_file = root / "sleepy.yaml"
    policy_file.write_text(dump_policy(with_hook(env.policy, "database", hook)))
    proc = subprocess.Popen(
        [
            *(HAPROTECT, "backup", str(policy_file), "--inventory", str(short)),
            *("--repo", f"file://{root}/repo", "--staging", str(root / "staging-k9"), "--json"),
        ],
        env={**os.environ, "HAPROTECT_PASSWORD": "pw"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while gate_state(lab) != "held" and time.monotonic() < deadline:
            assert proc.poll() is None, "the backup ended before it held the gate"
            time.sleep(0.05)
        assert gate_state(lab) == "held"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed = time.monotonic()
        while not (gate_state(lab) == "open" and serves(lab)):
            assert time.monotonic() - killed < lease + 3, "the gate stayed held past its lease"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert backup(env).status is Status.COMPLETED


def endpoint(lab: Lab, node: str) -> Endpoint:
    params = conninfo_to_dict(lab.dsn(node))
    return Endpoint(node, str(params["host"]), str(params["port"]), str(params["user"]))


def replay_state(standby: Endpoint) -> tuple[str, str]:
    """The standby's pause state and replay position."""
    with standby.connect() as conn:
        row = conn.execute(
            "SELECT pg_get_wal_replay_pause_state(), pg_last_wal_replay_lsn()::text"
        ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def commit_on_primary(lab: Lab) -> str:
    with psycopg.connect(lab.dsn(lab.primary), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS pause_probe (at timestamptz)")
        conn.execute("INSERT INTO pause_probe VALUES (now())")
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def received(standby: Endpoint, lsn: str, seconds: float = 10.0) -> bool:
    """Whether ``standby`` has received (not necessarily replayed) WAL up to ``lsn``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with standby.connect() as conn:
            row = conn.execute("SELECT pg_last_wal_receive_lsn()::text").fetchone()
        if row is not None and row[0] is not None and lsn_int(str(row[0])) >= lsn_int(lsn):
            return True
        time.sleep(0.05)
    return False


def test_a_paused_standby_stands_still_and_replays_again_on_resume(env: LabEnv) -> None:
    lab = env.lab
    standby = endpoint(lab, lab.standby)
    pause = pgreplay.pause_at(standby, primary_lsn(endpoint(lab, lab.primary)))
    try:
        assert replay_state(standby) == ("paused", pause.lsn)
        later = commit_on_primary(lab)
        assert received(standby, later)
        assert replay_state(standby) == ("paused", pause.lsn)  # received, not replayed
        assert lsn_int(later) > lsn_int(pause.lsn)
    finally:
        assert pause.resume() is None
    done, _ = catch_up(standby, later, 10.0)
    assert done and replay_state(standby)[0] == "not paused"


def test_a_standby_paused_at_the_cut_replays_again_when_the_backup_dies(env: LabEnv) -> None:
    lab = env.lab
    standby, primary = endpoint(lab, lab.standby), endpoint(lab, lab.primary)
    holder = textwrap.dedent(
        f"""
        import time
        from haprotect.movers.pgcheck import Endpoint, primary_lsn
        from haprotect.movers.pgreplay import pause_at
        primary = Endpoint(*{(primary.node, primary.host, primary.port, primary.user)!r})
        standby = Endpoint(*{(standby.node, standby.host, standby.port, standby.user)!r})
        print(pause_at(standby, primary_lsn(primary)).lsn, flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        paused_at = proc.stdout.readline().strip()
        assert paused_at, "the holder did not pause the standby"
        later = commit_on_primary(lab)
        assert received(standby, later)
        assert replay_state(standby) == ("paused", paused_at)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done, replayed = catch_up(standby, later, 15.0)
    assert done, f"the standby still stands at {replayed} after its holder died"
    assert replay_state(standby)[0] == "not paused"


class OnceOnly(Endpoint):
    """An endpoint whose first connection works and every later one fails."""

    opened: ClassVar[list[str]] = []

    def connect(self, timeout: int = 5) -> psycopg.Connection[Any]:
        if self.opened:
            raise ComponentError(f"cannot connect to PostgreSQL on {self}: network gone")
        self.opened.append(self.node)
        return super().connect(timeout)


def test_a_pause_that_fails_half_way_is_undone_by_its_keeper(
    env: LabEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = env.lab
    real = endpoint(lab, lab.standby)
    standby = OnceOnly(real.node, real.host, real.port, real.user)
    OnceOnly.opened.clear()

    def connection_lost(conn: psycopg.Connection[Any], deadline: float) -> str:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(pgreplay, "_wait_paused", connection_lost)
    with pytest.raises(ComponentError, match="cannot pause WAL replay"):
        pgreplay.pause_at(standby, primary_lsn(endpoint(lab, lab.primary)))
    # The direct resume could not connect: the lease keeper resumed the standby.
    assert replay_state(real)[0] == "not paused"
