"""A job's run as a child process of the installed ``haprotect`` command.

The service does not back up in its own process. Each run is ``haprotect
backup POLICY --json`` (or another verb), whose JSON lines are read for
progress and for the result: a crash or a leak in a run never takes the
service down, the service's memory stays that of a scheduler, and the run
is exactly what an administrator would type. The child is told its parent's
pid (``HAPROTECT_PARENT_PID``) and asks the kernel for SIGTERM when the
service dies, which unwinds it and resumes every held tier; the quiescers'
leases cover a kill -9 of both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Read by the command line (cli/signals.py) to die with the service.
PARENT_PID_VARIABLE = "HAPROTECT_PARENT_PID"

#: How many lines of the child's stderr a failure keeps, to explain itself.
_STDERR_TAIL = 20

EventSink = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class ChildOutcome:
    """How a child run ended.

    ``status`` is the run's own (``completed``, ``partially_failed``,
    ``failed``) when it reported a result; otherwise ``completed`` when the
    command exited 0 and ``failed`` when not; ``cancelled`` when the service
    stopped it. ``result`` is the JSON of a backup's or restore's result,
    ``last`` the last JSON object the command printed (the summary of a
    repository command); ``error`` the end of its stderr when it did not
    complete.
    """

    status: str
    exit_code: int
    result: Mapping[str, Any] | None = None
    error: str | None = None
    sets: tuple[str, ...] = field(default=())
    last: Mapping[str, Any] | None = None


def haprotect_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("haprotect")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from haprotect.cli.main import main; main()"]


def run_child(
    args: Sequence[str],
    on_event: EventSink,
    *,
    cancel: threading.Event | None = None,
    env: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
) -> ChildOutcome:
    """Run ``haprotect ARGS`` (which must print JSON lines) and wait for it.

    Every JSON line goes to ``on_event`` as it comes; a line that is not
    JSON is kept with stderr. ``cancel`` set: the child gets SIGTERM (its
    tiers resume as it unwinds) and the outcome is ``cancelled``.
    """
    child_env = dict(os.environ if env is None else env)
    child_env[PARENT_PID_VARIABLE] = str(os.getpid())
    process = subprocess.Popen(
        [*(command or haprotect_command()), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    tail: deque[str] = deque(maxlen=_STDERR_TAIL)
    drain = threading.Thread(target=_keep_tail, args=(process.stderr, tail), daemon=True)
    drain.start()
    watcher = _watch_cancel(process, cancel) if cancel is not None else None
    result: Mapping[str, Any] | None = None
    last: Mapping[str, Any] | None = None
    for line in process.stdout:
        event = _parsed(line)
        if event is None:
            if line.strip():
                tail.append(line.rstrip("\n"))
            continue
        last = event
        if event.get("event") == "run_finished":
            found = event.get("result")
            result = found if isinstance(found, dict) else None
        on_event(event)
    exit_code = process.wait()
    drain.join(timeout=5)
    if watcher is not None:
        watcher.set()
    cancelled = cancel is not None and cancel.is_set()
    return _outcome(exit_code, result, last, tail, cancelled=cancelled)


def _outcome(
    exit_code: int,
    result: Mapping[str, Any] | None,
    last: Mapping[str, Any] | None,
    tail: deque[str],
    *,
    cancelled: bool,
) -> ChildOutcome:
    error = "\n".join(tail) or None
    sets = tuple(str(s) for s in result.get("sets", ())) if result else ()
    if cancelled:
        return ChildOutcome("cancelled", exit_code, result, error or "cancelled", sets, last)
    if result is not None:
        status = str(result.get("status", "failed"))
        explained = None if status == "completed" else (_problems(result) or error)
        return ChildOutcome(status, exit_code, result, explained, sets, last)
    if exit_code == 0:
        return ChildOutcome("completed", 0, None, None, (), last)
    reason = error or f"haprotect exited with status {exit_code}"
    return ChildOutcome("failed", exit_code, None, reason, (), last)


def _problems(result: Mapping[str, Any]) -> str | None:
    """The errors a run's result records, one line each, with the item they concern."""
    lines = [
        f"{issue.get('scope')}: {issue.get('message')}"
        for issue in result.get("issues") or ()
        if isinstance(issue, dict) and issue.get("severity") == "error"
    ]
    return "\n".join(dict.fromkeys(lines)) or None


def _parsed(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _keep_tail(stream: Any, tail: deque[str]) -> None:
    for line in stream:
        tail.append(line.rstrip("\n"))


def _watch_cancel(process: subprocess.Popen[str], cancel: threading.Event) -> threading.Event:
    """A thread that sends SIGTERM to the child when ``cancel`` is set; set the result to end it."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.2):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                return

    threading.Thread(target=watch, daemon=True).start()
    return done
