"""The lab as the demo and later tests use it: real PostgreSQL, real HTTP, real files.

One lab serves the whole module (starting it is the slow part); the tests run
in file order and the last one brings it down. Each test asks the lab who is
primary now rather than assuming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.conftest import require_component
from tests.integration.conftest import require_postgres

from haprotect.errors import ComponentError
from haprotect.lab import Lab, LabLoad, verify_acknowledged
from haprotect.lab.app import OrderStore, flush_loop
from haprotect.lab.client import get_json, post_json, request
from haprotect.lab.haproxy import HINT as HAPROXY_HINT
from haprotect.lab.haproxy import find_haproxy
from haprotect.sources import DiscoverOptions, discover

HAPROTECT = str(Path(sys.executable).with_name("haprotect"))


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """One lab for the session, in a short /tmp path the postgres user can reach."""
    require_postgres()
    root = Path(tempfile.mkdtemp(prefix="hp-lab-"))
    # No background flush during the tests: buffered orders stay buffered until asked.
    lab = Lab(root, flush_interval=3600.0)
    try:
        lab.up()
        yield lab
    finally:
        lab.down(purge=True)
        shutil.rmtree(root, ignore_errors=True)


def post_order(lab: Lab, item: str = "espresso") -> str:
    order_id = uuid.uuid4().hex
    answer = post_json(f"{lab.web_url}/api/orders", {"id": order_id, "item": item, "quantity": 2})
    assert answer["id"] == order_id
    return order_id


def stored_payload(dsn: str, order_id: str) -> str | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT payload FROM orders WHERE id = %s", (order_id,)).fetchone()
    return None if row is None else str(row[0])


def wait_for(predicate: Any, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def lab_processes(root: Path) -> dict[int, str]:
    """Live (not zombie) processes working in the lab or naming it: pid -> command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_text().rpartition(")")[2].split()[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except (OSError, IndexError):
            continue
        if cwd == str(root) or cwd.startswith(f"{root}/") or str(root) in cmdline:
            found[int(entry.name)] = cmdline
    return found


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HAPROTECT, *args], capture_output=True, text=True, check=False)


def test_up_is_idempotent(lab: Lab) -> None:
    before = lab.status()
    again = lab.up()
    assert [n.pid for n in again.nodes] == [n.pid for n in before.nodes]
    assert [t.pid for t in again.tiers] == [t.pid for t in before.tiers]
    commands = list(lab_processes(lab.root).values())
    assert sum("haprotect.lab.app" in c for c in commands) == 1
    assert sum("haprotect.lab.web" in c for c in commands) == 1
    postmasters = [c for c in commands if " -D " in c and c.split()[0].endswith("postgres")]
    assert len(postmasters) == 2, postmasters


def test_status_shows_streaming_replication(lab: Lab) -> None:
    status = lab.status()
    assert status.healthy, status
    primary, standby = status.node(lab.primary), status.node(lab.standby)
    assert (primary.role, standby.role) == ("primary", "standby")
    assert [p.application_name for p in primary.replicas] == [standby.name]
    assert primary.replicas[0].state == "streaming"
    assert standby.wal_receiver == "streaming"
    assert standby.upstream_port == primary.port
    assert all(t.healthy for t in status.tiers)


def test_status_command_prints_json(lab: Lab) -> None:
    done = run_cli("lab", "status", "--dir", str(lab.root), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["healthy"], data["streaming"], data["primary"]) == (True, True, lab.primary)


def test_order_is_buffered_then_flushed_to_the_primary_and_replicated(lab: Lab) -> None:
    order_id = post_order(lab)
    assert get_json(f"{lab.web_url}/api/orders")["buffered"] >= 1
    assert stored_payload(lab.primary_dsn, order_id) is None
    assert lab.flush() >= 1
    payload = stored_payload(lab.primary_dsn, order_id)
    assert payload is not None and json.loads(payload)["id"] == order_id
    assert get_json(f"{lab.web_url}/api/orders/{order_id}")["stored"] is True
    assert wait_for(lambda: stored_payload(lab.standby_dsn, order_id) == payload)


def test_background_flush_writes_the_buffer(lab: Lab) -> None:
    store = OrderStore(lab.root)
    order_id = uuid.uuid4().hex
    store.add({"id": order_id, "item": "tea", "quantity": 1})
    stop = threading.Event()
    flusher = threading.Thread(target=flush_loop, args=(store, 0.1, stop), daemon=True)
    flusher.start()
    try:
        assert wait_for(lambda: stored_payload(lab.primary_dsn, order_id) is not None, 10)
        assert store.buffered() == 0
    finally:
        stop.set()
        flusher.join()
        store.close()


def test_upload_is_stored_byte_for_byte(lab: Lab) -> None:
    data = os.urandom(200_000) + b"\0\r\n end"
    status, body = request(
        f"{lab.web_url}/uploads?name=photo.bin",
        method="POST",
        data=data,
        content_type="application/octet-stream",
    )
    answer = json.loads(body)
    assert status == 201
    assert answer == {
        "name": "photo.bin",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert (lab.uploads_dir / "photo.bin").read_bytes() == data
    assert request(f"{lab.web_url}/uploads/photo.bin")[1] == data
    assert not [p for p in lab.uploads_dir.iterdir() if p.name.startswith(".")]


def test_web_tier_serves_a_page_and_health(lab: Lab) -> None:
    page = request(f"{lab.web_url}/")[1].decode()
    assert "haprotect lab shop" in page and lab.primary in page
    health = get_json(f"{lab.web_url}/health")
    assert health["status"] == "ok" and health["application"]["database"] == "ok"


def crm_verify_path() -> str:
    path = shutil.which("crm_verify")
    require_component(
        "crm_verify", path is not None, "scripts/bootstrap installs pacemaker-cli-utils"
    )
    assert path is not None
    return path


def discovered_roles(lab: Lab, *, use_cli: bool) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    topology = discover(f"pacemaker+file://{lab.cib_path}", DiscoverOptions(use_cli=use_cli))
    (cluster,) = topology.clusters
    return {d.id: (d.primary, d.standbys) for d in cluster.datasets}


def assert_cib_matches(lab: Lab) -> None:
    done = subprocess.run(
        [crm_verify_path(), "--xml-file", str(lab.cib_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = (lab.primary, (lab.standby,))
    for use_cli in (True, False):
        roles = discovered_roles(lab, use_cli=use_cli)
        assert roles["pgsql_shop"] == expected, (use_cli, roles)
        assert roles["fs_shared"][0] == lab.primary


def test_cib_passes_crm_verify_and_discovery_finds_primary_and_standby(lab: Lab) -> None:
    assert_cib_matches(lab)
    for extra in ([], ["--no-cli"]):
        done = run_cli("discover", f"pacemaker+file://{lab.cib_path}", "--json", *extra)
        assert done.returncode == 0, done.stderr
        (cluster,) = json.loads(done.stdout)["clusters"]
        pg = next(d for d in cluster["datasets"] if d["id"] == "pgsql_shop")
        assert (pg["primary"], pg["standbys"]) == (lab.primary, [lab.standby])
        (application,) = cluster["applications"]
        tiers = [t["name"] for t in application["tiers"]]
        assert tiers == ["storage", "database", "application", "frontend"]


def test_failover_swaps_roles_and_the_app_follows(lab: Lab) -> None:
    old, new = lab.primary, lab.standby
    buffered = post_order(lab, "before failover")
    status = lab.failover()
    assert (status.primary, status.standby) == (new, old)
    assert (status.node(new).role, status.node(old).role) == ("primary", "standby")
    assert status.streaming and status.healthy, status
    assert_cib_matches(lab)
    after = post_order(lab, "after failover")
    assert lab.flush() >= 2
    new_dsn, old_dsn = lab.dsn(new), lab.dsn(old)
    for order_id in (buffered, after):
        assert stored_payload(new_dsn, order_id) is not None
        assert wait_for(lambda oid=order_id: stored_payload(old_dsn, oid) is not None)


def flush_often(lab: Lab, stop: threading.Event, failures: list[str]) -> None:
    """The application's background flush, faster: some fail while the primary moves."""
    while not stop.wait(0.2):
        try:
            lab.flush()
        except ComponentError as exc:
            failures.append(exc.message)


def test_load_through_a_failover_loses_nothing_acknowledged(lab: Lab) -> None:
    stop, flush_failures = threading.Event(), list[str]()
    flusher = threading.Thread(target=flush_often, args=(lab, stop, flush_failures))
    flusher.start()
    try:
        with LabLoad(lab.web_url, lab.journal_path, rate=25.0, upload_every=4, seed=7) as load:
            load.wait(1.5)
            lab.failover()
            load.wait(1.5)
    finally:
        stop.set()
        flusher.join()
    report = load.report()
    assert report.failures == 0, report.errors
    assert report.orders > 20 and report.uploads > 5, report
    checked = verify_acknowledged(lab)
    assert checked.ok, checked.summary()
    assert checked.orders_checked >= report.orders
    assert wait_for(lambda: verify_acknowledged(lab, flush=False, node=lab.standby).ok)


def test_verify_notices_a_lost_upload(lab: Lab) -> None:
    with LabLoad(lab.web_url, lab.journal_path, rate=20.0, upload_every=1) as load:
        load.wait(0.3)
    assert load.report().uploads >= 1
    victim = sorted(lab.uploads_dir.glob("load-*.bin"), key=lambda p: p.stat().st_mtime)[-1]
    data = victim.read_bytes()
    victim.unlink()
    try:
        checked = verify_acknowledged(lab)
        assert not checked.ok and checked.missing_uploads == (victim.name,)
    finally:
        victim.write_bytes(data)
    assert verify_acknowledged(lab).ok


def test_load_command_reports_and_verifies(lab: Lab) -> None:
    done = run_cli(
        "lab", "load", "--dir", str(lab.root), "--seconds", "1", "--rate", "10", "--json"
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["load"]["acknowledged"] >= 5 and data["verify"]["ok"] is True


def test_haproxy_takes_the_http_gates_place_and_the_cib_says_so(lab: Lab) -> None:
    """Then the next test checks that ``down`` stops HAProxy with the rest."""
    require_component("haproxy", find_haproxy() is not None, HAPROXY_HINT)
    status = Lab(lab.root, web_gate="haproxy").up()
    gate = next(t for t in status.tiers if t.name == "HAProxy gate")
    assert gate.running and gate.healthy, gate
    commands = lab_processes(lab.root).values()
    assert any(c.startswith(find_haproxy() or "?") for c in commands), commands
    assert not any("haprotect.lab.gate" in c for c in commands), commands
    order_id = post_order(lab)  # through HAProxy
    assert lab.flush() >= 1 and stored_payload(lab.primary_dsn, order_id)
    assert_cib_matches(lab)
    source = f"pacemaker+file://{lab.cib_path}"
    (cluster,) = discover(source, DiscoverOptions(use_cli=False)).clusters
    lb = next(r for r in cluster.resources if r.id == "web_lb")
    assert lb.agent == "ocf:heartbeat:haproxy"
    assert lb.settings == {"conffile": str(lab.root / "haproxy.cfg")}


def test_down_leaves_no_processes(lab: Lab) -> None:
    assert lab_processes(lab.root)
    lab.down()
    assert wait_for(lambda: not lab_processes(lab.root), 10), lab_processes(lab.root)
    status = lab.status()
    assert not status.running
    assert discovered_roles(lab, use_cli=False)["pgsql_shop"][0] is None
