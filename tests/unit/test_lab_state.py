"""The lab's pure pieces: state file, order canonical form, journal, process checks."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from haprotect.errors import InputError
from haprotect.lab.inventory import render_inventory
from haprotect.lab.journal import ORDER, UPLOAD, Journal, JournalEntry, read_journal
from haprotect.lab.processes import alive, read_pid, running_pid
from haprotect.lab.shop import OrderError, canonical, sha256_text, validate_order
from haprotect.lab.state import LabState, NodeState, lab_paths, load_state, save_state


def make_state(root: Path) -> LabState:
    return LabState(
        dir=str(root),
        pg_version=15,
        bindir="/usr/lib/postgresql/15/bin",
        run_as=None,
        nodes=(
            NodeState("node1", "1", 5433, str(root / "node1/pgdata")),
            NodeState("node2", "2", 5434, str(root / "node2/pgdata")),
        ),
        primary="node1",
        app_port=8001,
        web_port=8002,
    )


def test_state_round_trips_and_says_where_everything_is(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    save_state(state)
    assert load_state(tmp_path) == state
    data = json.loads((tmp_path / "lab.json").read_text())
    assert data["standby"] == "node2"
    assert data["web_url"] == "http://127.0.0.1:8002"
    assert data["paths"]["uploads"] == str(tmp_path / "shared/uploads")
    assert data["nodes"]["node2"]["port"] == 5434


def test_the_web_gate_is_kept_and_haproxy_has_no_admin_url(tmp_path: Path) -> None:
    state = replace(make_state(tmp_path), gate_port=8003, gate_admin_port=8004)
    assert state.web_gate == "http"
    assert state.gate_admin_url == "http://127.0.0.1:8004"
    haproxy = replace(state, web_gate="haproxy")
    save_state(haproxy)
    assert load_state(tmp_path) == haproxy
    assert haproxy.gate_admin_url is None
    assert haproxy.web_url == "http://127.0.0.1:8003"
    assert "quiesce" in render_inventory(state).decode()
    assert b"http-gate" in render_inventory(state)
    assert b"http-gate" not in render_inventory(haproxy)
    data = json.loads((tmp_path / "lab.json").read_text())
    data["web_gate"] = "nginx"
    (tmp_path / "lab.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="web_gate is 'nginx'"):
        load_state(tmp_path)


def test_failover_state_names_the_other_node(tmp_path: Path) -> None:
    state = make_state(tmp_path).with_primary("node2")
    assert (state.primary_node.port, state.standby_node.name) == (5434, "node1")
    assert "port=5434" in state.primary_node.dsn()
    with pytest.raises(InputError):
        state.with_primary("node9")


def test_no_state_file_is_no_lab_and_a_bad_one_is_an_input_error(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None
    (tmp_path / "lab.json").write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match=r"lab\.json: not a lab state file"):
        load_state(tmp_path)


def test_paths_are_under_the_lab(tmp_path: Path) -> None:
    paths = lab_paths(tmp_path)
    assert paths.cib == tmp_path / "cib.xml"
    assert paths.pgdata("node1") == tmp_path / "node1/pgdata"
    assert paths.pid_file("app") == tmp_path / "run/app.pid"


def test_canonical_form_ignores_key_order_and_spacing() -> None:
    a = {"id": "x", "item": "tea", "quantity": 2}
    b = {"quantity": 2, "item": "tea", "id": "x"}
    assert canonical(a) == canonical(b) == '{"id":"x","item":"tea","quantity":2}'
    assert sha256_text(canonical(a)) == sha256_text(canonical(b))


@pytest.mark.parametrize(
    "order",
    [
        [],
        {"id": "x", "quantity": 1},
        {"id": "x", "item": "tea", "quantity": 0},
        {"id": "x", "item": "tea", "quantity": True},
        {"id": "", "item": "tea", "quantity": 1},
    ],
)
def test_bad_orders_are_refused(order: object) -> None:
    with pytest.raises(OrderError):
        validate_order(order)


def test_journal_appends_whole_lines_and_skips_a_torn_one(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.append(JournalEntry(ORDER, "o1", "aa", 10, 1.0))
    journal.append(JournalEntry(UPLOAD, "u1", "bb", 20, 2.0))
    journal.close()
    with path.open("a") as handle:
        handle.write('{"kind": "order", "id": "o2", "sha')
    assert [e.id for e in read_journal(path)] == ["o1", "u1"]
    assert read_journal(tmp_path / "missing.jsonl") == []


def test_a_pid_counts_only_when_alive_and_marked(tmp_path: Path) -> None:
    me = os.getpid()
    assert alive(me)
    assert alive(me, "python") or alive(me, "pytest")
    assert not alive(me, "no-such-marker-anywhere")
    pid_file = tmp_path / "x.pid"
    assert read_pid(pid_file) is None
    pid_file.write_text(f"{me}\n")
    assert running_pid(pid_file) == me
    pid_file.write_text("not a pid")
    assert running_pid(pid_file) is None
