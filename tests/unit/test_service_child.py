"""A run as a child process: its events, its outcome, and its death with the service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from haprotect.service.child import PARENT_PID_VARIABLE, run_child


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


def test_events_are_passed_on_and_the_result_read() -> None:
    result = {"status": "completed", "sets": ["s1"], "items": []}
    lines = [{"event": "run_started"}, {"event": "run_finished", "result": result}]
    body = "".join(f"print({json.dumps(json.dumps(line))})\n" for line in lines)
    seen: list[Any] = []
    outcome = run_child([], seen.append, command=_script(body))
    assert [e["event"] for e in seen] == ["run_started", "run_finished"]
    assert outcome.status == "completed"
    assert outcome.sets == ("s1",)
    assert outcome.error is None


def test_a_child_without_a_result_failed_and_says_why() -> None:
    body = """
        import sys
        print("not json")
        sys.stderr.write("haprotect: the repository is locked\\n")
        sys.exit(7)
    """
    outcome = run_child([], lambda e: None, command=_script(body))
    assert outcome.status == "failed"
    assert outcome.exit_code == 7
    assert outcome.error is not None
    assert "the repository is locked" in outcome.error
    assert "not json" in outcome.error


def test_a_failed_runs_error_is_its_results_errors() -> None:
    issues = [
        {"scope": "c/db", "severity": "error", "message": "the copy misses writes"},
        {"scope": "c/fs", "severity": "warning", "message": "slow"},
    ]
    result = {"status": "partially_failed", "sets": ["s3"], "issues": issues}
    line = json.dumps({"event": "run_finished", "result": result})
    body = f"import sys\nprint({json.dumps(line)})\nsys.stderr.write('noise\\n')\nsys.exit(10)"
    outcome = run_child([], lambda e: None, command=_script(body))
    assert outcome.error == "c/db: the copy misses writes"


def test_a_partial_run_keeps_its_own_status() -> None:
    result = {"status": "partially_failed", "sets": ["s2"]}
    line = json.dumps({"event": "run_finished", "result": result})
    body = (
        f"import sys\nprint({json.dumps(line)})\n"
        "sys.stderr.write('one item failed\\n')\nsys.exit(10)"
    )
    outcome = run_child([], lambda e: None, command=_script(body))
    assert (outcome.status, outcome.exit_code) == ("partially_failed", 10)
    assert outcome.error == "one item failed"


def test_cancel_stops_the_child_with_sigterm() -> None:
    cancel = threading.Event()
    body = """
        import time
        print('{"event": "run_started"}', flush=True)
        time.sleep(30)
    """

    def on_event(event: Any) -> None:
        cancel.set()

    started = time.monotonic()
    outcome = run_child([], on_event, command=_script(body), cancel=cancel)
    assert time.monotonic() - started < 10
    assert outcome.status == "cancelled"
    assert outcome.exit_code == -signal.SIGTERM


def test_the_child_is_told_its_parent() -> None:
    parent = f"os.environ['{PARENT_PID_VARIABLE}']"
    body = f"import os, json; print(json.dumps({{'event': 'x', 'parent': {parent}}}))"
    seen: list[Any] = []
    run_child([], seen.append, command=_script(body))
    assert seen == [{"event": "x", "parent": str(os.getpid())}]


def test_a_run_unwinds_when_the_service_is_killed(tmp_path: Path) -> None:
    """kill -9 of the parent: the child's SIGTERM handler runs its finally blocks."""
    marker = tmp_path / "unwound"
    ready = tmp_path / "ready"
    grandchild = textwrap.dedent(f"""
        import pathlib, time
        from haprotect.cli.signals import sigterm_raises
        try:
            with sigterm_raises():
                pathlib.Path({str(ready)!r}).touch()
                time.sleep(60)
        finally:
            pathlib.Path({str(marker)!r}).touch()
    """)
    service = textwrap.dedent(f"""
        import os, subprocess, sys, time
        env = dict(os.environ, {PARENT_PID_VARIABLE}=str(os.getpid()))
        subprocess.Popen([sys.executable, "-c", {grandchild!r}], env=env, start_new_session=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", service])
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    while not marker.exists():
        assert time.monotonic() < deadline, "the run went on after its service died"
        time.sleep(0.05)


def test_a_repository_command_ends_by_its_exit_status_with_its_summary() -> None:
    body = """
        print('{"type": "progress", "done": 1}')
        print('{"type": "summary", "removed": 3}')
    """
    outcome = run_child([], lambda e: None, command=_script(body))
    assert outcome.status == "completed"
    assert outcome.last == {"type": "summary", "removed": 3}
    assert outcome.result is None
