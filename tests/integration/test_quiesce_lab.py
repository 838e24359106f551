"""The quiescers on the real lab: the gate under load, app flush, PostgreSQL, the CIB.

One lab for the module, in its own temporary directory, torn down at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from lxml import etree
from tests.conftest import require_component
from tests.integration.conftest import require_postgres

from haprotect.errors import QuiesceError
from haprotect.lab import Lab, LabLoad, read_journal, verify_acknowledged
from haprotect.lab.journal import ORDER, Journal, JournalEntry
from haprotect.lab.shop import canonical, sha256_text
from haprotect.quiesce import OnError, QuiesceSpec, held
from haprotect.quiesce.app_flush import AppFlushQuiescer
from haprotect.quiesce.cluster import ClusterQuiescer
from haprotect.quiesce.http_gate import HttpGateQuiescer
from haprotect.quiesce.postgres import PostgresQuiescer


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_postgres()
    root = Path(tempfile.mkdtemp(prefix="hp-qlab-"))
    lab = Lab(root, flush_interval=3600.0)  # no background flush: the buffer is ours to empty
    try:
        lab.up()
        yield lab
    finally:
        lab.down(purge=True)
        shutil.rmtree(root, ignore_errors=True)


def gate_spec(lab: Lab, lease: float = 60.0, timeout: float = 10.0) -> QuiesceSpec:
    return QuiesceSpec(
        "http-gate",
        "frontend",
        timeout_seconds=timeout,
        lease_seconds=lease,
        options={"admin_url": lab.gate_admin_url},
    )


def flush_spec(lab: Lab) -> QuiesceSpec:
    return QuiesceSpec(
        "app-flush",
        "application",
        options={"url": f"{lab.app_url}/admin/flush", "require_empty": True},
    )


def gate_status(lab: Lab) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{lab.gate_admin_url}/status", trust_env=False).json()
    return answer


def wait_for(predicate: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def stored_ids(lab: Lab, ids: list[str]) -> list[str]:
    """The orders of ``ids`` in the database, in the order the application received them."""
    with psycopg.connect(lab.primary_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id FROM orders WHERE id = ANY(%s) ORDER BY received_at, id", (ids,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def post_order(
    lab: Lab, seq: int, journal: Journal | None = None, timeout: float = 30
) -> httpx.Response:
    order = {"id": uuid.uuid4().hex, "item": "tea", "quantity": 1, "seq": seq}
    response = httpx.post(f"{lab.web_url}/api/orders", json=order, trust_env=False, timeout=timeout)
    if journal is not None and response.status_code == 202:
        payload = canonical(order)
        journal.append(
            JournalEntry(ORDER, order["id"], sha256_text(payload), len(payload), time.time())
        )
    return response


def test_the_public_url_goes_through_the_gate(lab: Lab) -> None:
    assert lab.web_url != lab.web_direct_url
    assert httpx.get(f"{lab.web_url}/health", trust_env=False).json()["tier"] == "web"
    forwarded_before = gate_status(lab)["counters"]["forwarded"]
    httpx.get(f"{lab.web_url}/uploads", trust_env=False)
    assert gate_status(lab)["counters"]["forwarded"] > forwarded_before
    assert lab.status().tier("HTTP gate").healthy


def test_held_requests_queue_and_replay_in_arrival_order(lab: Lab) -> None:
    quiescer, spec = HttpGateQuiescer(), gate_spec(lab)
    journal = Journal(lab.journal_path)
    quiescer.hold(spec)
    futures: list[Future[httpx.Response]] = []
    try:
        with ThreadPoolExecutor(6) as pool:
            for seq in range(6):
                futures.append(pool.submit(post_order, lab, seq, journal))
                assert wait_for(lambda n=seq + 1: gate_status(lab)["queued"] == n), gate_status(lab)
            time.sleep(0.3)
            assert not any(f.done() for f in futures), "a request passed the held gate"
            resumed = quiescer.resume(spec)
            answers = [f.result() for f in futures]
    finally:
        quiescer.resume(spec)
        journal.close()
    assert resumed.details["replaying"] == "6"
    assert [a.status_code for a in answers] == [202] * 6
    ids = [a.json()["id"] for a in answers]
    assert lab.flush() >= 6
    assert stored_ids(lab, ids) == ids, "the application received the queue out of order"
    assert verify_acknowledged(lab).ok


def test_a_consistent_cut_under_continuous_load_loses_nothing(lab: Lab) -> None:
    specs = [
        gate_spec(lab),
        flush_spec(lab),
        QuiesceSpec("postgresql", "database", options={"dsn": lab.primary_dsn, "mode": "backup"}),
    ]
    loads = [
        LabLoad(lab.web_url, lab.journal_path, rate=15.0, upload_every=3, seed=i) for i in range(3)
    ]
    for load in loads:
        load.start()
    try:
        time.sleep(1.0)
        with held(specs) as holding:
            # Everything acknowledged so far is in the database or on disk: nothing in flight,
            # nothing buffered, nothing new coming in while the cut is taken.
            cut = verify_acknowledged(lab, flush=False)
            time.sleep(1.0)
            queued = gate_status(lab)["queued"]
        released_at = gate_status(lab)["last_release"]["at"]  # when the gate let go
        time.sleep(1.0)
    finally:
        reports = [load.stop() for load in loads]
    assert holding.ok, holding.issues
    assert cut.ok, cut.summary()
    assert cut.orders_checked > 5
    assert queued >= 1, "the load's requests did not queue at the gate"
    assert sum(r.failures for r in reports) == 0, [r.errors for r in reports]
    assert sum(r.acknowledged for r in reports) > 40
    gate, flush, database = holding.windows
    assert gate.held_at is not None and gate.resumed_at is not None
    assert flush.hold_details["buffered"] == "0" and int(flush.hold_details["flushed"]) >= 0
    assert database.hold_details["start_lsn"] and database.resume_details["stop_lsn"]
    # No request was acknowledged while the gate held (the replies came after its release).
    assert gate.held_at < released_at <= gate.resumed_at
    during = [
        e for e in read_journal(lab.journal_path) if gate.held_at + 0.3 < e.time < released_at
    ]
    assert during == []
    checked = verify_acknowledged(lab)
    assert checked.ok, checked.summary()


def test_over_the_bound_or_past_the_deadline_requests_get_503_with_retry_after(
    lab: Lab, tmp_path: Path
) -> None:
    port, admin = free_port(), free_port()
    upstream = lab.web_direct_url.removeprefix("http://")
    argv = [sys.executable, "-m", "haprotect.quiesce.gate", "--listen", f"127.0.0.1:{port}"]
    argv += ["--upstream", upstream, "--admin", f"127.0.0.1:{admin}"]
    argv += ["--max-queue", "2", "--max-wait", "1", "--retry-after", "3"]
    gate = subprocess.Popen(argv, stderr=(tmp_path / "gate.log").open("wb"))
    url, admin_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}"
    try:
        assert wait_for(lambda: _answers(f"{admin_url}/health"))
        spec = QuiesceSpec("http-gate", "frontend", options={"admin_url": admin_url})
        quiescer = HttpGateQuiescer()
        quiescer.hold(spec)
        order = {"item": "tea", "quantity": 1}
        with ThreadPoolExecutor(2) as pool:
            queued = [
                pool.submit(
                    httpx.post, f"{url}/api/orders", json=order, trust_env=False, timeout=10
                )
                for _ in range(2)
            ]
            assert wait_for(
                lambda: httpx.get(f"{admin_url}/status", trust_env=False).json()["queued"] == 2
            )
            over = httpx.post(f"{url}/api/orders", json=order, trust_env=False)
            late = [f.result() for f in queued]
        quiescer.resume(spec)
        after = httpx.post(f"{url}/api/orders", json=order, trust_env=False)
    finally:
        gate.terminate()
        gate.wait(15)
    assert over.status_code == 503 and over.headers["Retry-After"] == "3"
    assert over.json()["reason"] == "queue-full"
    assert [r.status_code for r in late] == [503, 503]
    assert {r.json()["reason"] for r in late} == {"waited-too-long"}
    assert all(r.headers["Retry-After"] == "3" for r in late)
    assert after.status_code == 202


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


GATE_HOLDER = textwrap.dedent(
    """
    import sys, time
    from haprotect.quiesce import QuiesceSpec
    from haprotect.quiesce.http_gate import HttpGateQuiescer
    spec = QuiesceSpec("http-gate", "frontend", lease_seconds=float(sys.argv[2]),
                       options={"admin_url": sys.argv[1]})
    HttpGateQuiescer().hold(spec)
    print("held", flush=True)
    time.sleep(120)
    """
)


def test_kill_9_of_the_holder_lets_the_gate_resume_within_its_lease(lab: Lab) -> None:
    lease = 2.0
    holder = subprocess.Popen(
        [sys.executable, "-c", GATE_HOLDER, lab.gate_admin_url, str(lease)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        os.kill(holder.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        assert gate_status(lab)["state"] == "held"
        answer = post_order(lab, 0, timeout=15)  # queued, then replayed when the lease ends
        waited = time.monotonic() - killed_at
    finally:
        holder.kill()
        holder.wait()
    assert answer.status_code == 202
    assert waited < lease + 1.5
    status = gate_status(lab)
    assert status["state"] == "open" and status["last_release"]["reason"] == "lease-expired"
    assert post_order(lab, 1, timeout=5).status_code == 202  # serving again


def test_app_flush_empties_the_write_behind_buffer_into_postgresql(lab: Lab) -> None:
    ids = [post_order(lab, i).json()["id"] for i in range(4)]
    health = httpx.get(f"{lab.app_url}/health", trust_env=False).json()
    assert health["buffered"] >= 4 and stored_ids(lab, ids) == []
    report = AppFlushQuiescer().hold(flush_spec(lab))
    assert int(report.details["flushed"]) >= 4 and report.details["buffered"] == "0"
    assert report.details["status"] == "200"
    assert sorted(stored_ids(lab, ids)) == sorted(ids)
    assert httpx.get(f"{lab.app_url}/health", trust_env=False).json()["buffered"] == 0


def test_app_flush_failure_is_one_line(lab: Lab) -> None:
    spec = QuiesceSpec("app-flush", "application", options={"url": f"{lab.app_url}/admin/nope"})
    with pytest.raises(
        QuiesceError, match=r"^app-flush of tier application: POST .*/admin/nope: 404 no such path"
    ):
        AppFlushQuiescer().hold(spec)


@pytest.mark.parametrize("node", ["primary", "standby"])
def test_postgresql_backup_start_and_stop_return_lsns_and_the_label(lab: Lab, node: str) -> None:
    dsn = lab.primary_dsn if node == "primary" else lab.standby_dsn
    spec = QuiesceSpec(
        "postgresql", "database", options={"dsn": dsn, "mode": "backup", "label": f"hp-{node}"}
    )
    quiescer = PostgresQuiescer()
    hold = quiescer.hold(spec)
    with pytest.raises(QuiesceError, match="already running"):
        quiescer.hold(spec)
    resume = quiescer.resume(spec)
    start, stop = hold.details["start_lsn"], resume.details["stop_lsn"]
    assert _lsn(start) <= _lsn(stop)
    assert hold.details["on_standby"] == ("true" if node == "standby" else "false")
    label = resume.details["backup_label"]
    assert f"START WAL LOCATION: {start}" in label and f"LABEL: hp-{node}" in label
    assert quiescer.resume(spec).details == {}  # resume again: nothing held


def test_postgresql_checkpoint_reports_where_it_checkpointed(lab: Lab) -> None:
    spec = QuiesceSpec("postgresql", "database", options={"dsn": lab.primary_dsn})
    report = PostgresQuiescer().hold(spec)
    assert report.details["mode"] == "checkpoint" and _lsn(report.details["checkpoint_lsn"]) > 0


def test_postgresql_unreachable_is_one_line() -> None:
    spec = QuiesceSpec(
        "postgresql",
        "database",
        timeout_seconds=2,
        options={"dsn": f"host=127.0.0.1 port={free_port()} dbname=x"},
    )
    with pytest.raises(QuiesceError, match=r"^postgresql of tier database: cannot connect: "):
        PostgresQuiescer().hold(spec)


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


# -- the cluster quiescer on a copy of the lab's CIB -----------------------------------------


def cib_copy(lab: Lab, tmp_path: Path) -> Path:
    require_component(
        "crm_resource", shutil.which("crm_resource") is not None, "install pacemaker-cli-utils"
    )
    copy = tmp_path / "cib.xml"
    shutil.copyfile(lab.cib_path, copy)  # as the lab wrote it: the tools can modify it
    return copy


def meta(cib: Path, resource: str, name: str) -> str | None:
    tree = etree.parse(str(cib))
    found = tree.xpath(f"//*[@id='{resource}']/meta_attributes/nvpair[@name='{name}']/@value")
    return str(found[0]) if found else None


def maintenance(cib: Path) -> str | None:
    found = etree.parse(str(cib)).xpath("//crm_config//nvpair[@name='maintenance-mode']/@value")
    return str(found[0]) if found else None


def maintenance_unset(cib: Path) -> bool:
    """No maintenance mode; False too while a tool is rewriting the file (it writes in place)."""
    try:
        return maintenance(cib) is None
    except etree.XMLSyntaxError:
        return False


def test_cluster_quiescer_unmanages_a_resource_and_deletes_what_was_not_there(
    lab: Lab, tmp_path: Path
) -> None:
    cib = cib_copy(lab, tmp_path)
    assert meta(cib, "web_front", "is-managed") is None
    spec = QuiesceSpec(
        "cluster", "frontend", options={"resource": "web_front", "cib_file": str(cib)}
    )
    quiescer = ClusterQuiescer()
    report = quiescer.hold(spec)
    assert report.details["previous"] == "unset"
    assert meta(cib, "web_front", "is-managed") == "false"
    quiescer.resume(spec)
    assert meta(cib, "web_front", "is-managed") is None


def test_cluster_quiescer_puts_back_a_previous_value(lab: Lab, tmp_path: Path) -> None:
    cib = cib_copy(lab, tmp_path)
    env = {**os.environ, "CIB_file": str(cib)}
    subprocess.run(
        [
            "crm_resource",
            "--resource",
            "orders_app",
            "--set-parameter",
            "is-managed",
            "--parameter-value",
            "true",
            "--meta",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    spec = QuiesceSpec(
        "cluster", "application", options={"resource": "orders_app", "cib_file": str(cib)}
    )
    with held([spec]) as holding:
        assert meta(cib, "orders_app", "is-managed") == "false"
    assert holding.ok and holding.windows[0].hold_details["previous"] == "true"
    assert meta(cib, "orders_app", "is-managed") == "true"


def test_cluster_maintenance_mode_toggles_and_a_dead_holder_is_undone(
    lab: Lab, tmp_path: Path
) -> None:
    cib = cib_copy(lab, tmp_path)
    spec = QuiesceSpec("cluster", "shop", options={"mode": "maintenance", "cib_file": str(cib)})
    quiescer = ClusterQuiescer()
    quiescer.hold(spec)
    assert maintenance(cib) == "true"
    quiescer.resume(spec)
    assert maintenance(cib) is None
    holder = subprocess.Popen(
        [sys.executable, "-c", CLUSTER_HOLDER, str(cib)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert maintenance(cib) == "true"
        os.kill(holder.pid, signal.SIGKILL)
    finally:
        holder.kill()
        holder.wait()
    assert wait_for(lambda: maintenance_unset(cib), 10), "the lease keeper did not restore it"


def test_cluster_quiescer_names_a_missing_resource(lab: Lab, tmp_path: Path) -> None:
    cib = cib_copy(lab, tmp_path)
    spec = QuiesceSpec(
        "cluster", "x", on_error=OnError.FAIL, options={"resource": "nosuch", "cib_file": str(cib)}
    )
    with pytest.raises(QuiesceError, match=r"cannot read resource nosuch is-managed: crm_resource"):
        ClusterQuiescer().hold(spec)


CLUSTER_HOLDER = textwrap.dedent(
    """
    import sys, time
    from haprotect.quiesce import QuiesceSpec
    from haprotect.quiesce.cluster import ClusterQuiescer
    spec = QuiesceSpec("cluster", "shop", lease_seconds=60,
                       options={"mode": "maintenance", "cib_file": sys.argv[1]})
    ClusterQuiescer().hold(spec)
    print("held", flush=True)
    time.sleep(120)
    """
)


def test_lab_json_names_the_gate(lab: Lab) -> None:
    data = json.loads((lab.root / "lab.json").read_text())
    assert data["web_url"] == lab.web_url and data["gate_admin_url"] == lab.gate_admin_url
    assert data["web_direct_url"] == lab.web_direct_url
