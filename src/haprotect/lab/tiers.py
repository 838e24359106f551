"""The application and web tiers as background processes of a lab."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import haprotect
from haprotect.errors import ComponentError
from haprotect.lab import processes
from haprotect.lab.client import HttpFailure, get_json
from haprotect.lab.state import LabPaths, LabState

TIERS = ("app", "web", "gate")  #: module names under haprotect.lab, in start order
TIER_NAMES = {"app": "application", "web": "web", "gate": "HTTP gate"}


def health_url(state: LabState, tier: str) -> str:
    """Where a tier answers ``GET /health`` itself (the gate: on its admin port)."""
    if tier == "app":
        return state.app_url
    if tier == "gate" and state.gate_admin_url is not None:
        return state.gate_admin_url
    return state.web_direct_url


def marker(root: Path, tier: str) -> str:
    """What a tier's command line holds, so a recycled pid is never taken for it."""
    return f"haprotect.lab.{tier} --lab {root}"


def tier_pid(paths: LabPaths, tier: str) -> int | None:
    return processes.running_pid(paths.pid_file(tier), marker(paths.root, tier))


def stop_tier(paths: LabPaths, tier: str) -> bool:
    """Stop a tier (the application flushes its buffer as it goes); True if it ran."""
    return processes.stop(paths.pid_file(tier), marker(paths.root, tier), grace=20.0)


def start_tier(paths: LabPaths, state: LabState, tier: str, timeout: float = 20.0) -> bool:
    """Start a tier unless it runs; wait until it answers /health. True if started now."""
    if tier_pid(paths, tier) is not None:
        return False
    src = str(Path(haprotect.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    log_file = paths.log_file(tier)
    pid = processes.spawn(
        [sys.executable, "-m", f"haprotect.lab.{tier}", "--lab", str(paths.root)],
        pid_file=paths.pid_file(tier),
        log_file=log_file,
        cwd=paths.root,
        env=env,
    )
    url = health_url(state, tier)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and processes.alive(pid):
        try:
            get_json(f"{url}/health", timeout=2.0)
            return True
        except HttpFailure:
            time.sleep(0.1)
    processes.stop(paths.pid_file(tier))
    raise ComponentError(
        f"the {TIER_NAMES[tier]} tier did not start: {tail(log_file)}", hint=f"see {log_file}"
    )


def tail(path: Path, lines: int = 3) -> str:
    """The last lines of a log, on one line."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "no log"
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "empty log"
